"""Safe image decode and encode: untrusted bytes in, a plain sRGB RGB image out.

Pillow, numpy and the stdlib only: the API process imports this without torch.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from nst_core.errors import (
    AnimatedImage,
    ImageError,
    ImageTooLarge,
    InvalidImage,
    UnsupportedImage,
)

try:
    from PIL import ImageCms
except ImportError:  # Pillow built without LittleCMS: colour management degrades to convert()
    ImageCms = None  # type: ignore[assignment]

__all__ = [
    "ALLOWED_FORMATS",
    "MEDIA_TYPES",
    "ImageInfo",
    "decode_image",
    "encode_image",
    "load_image",
    "probe_image",
    "resize_long_side",
]

ALLOWED_FORMATS: frozenset[str] = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF"})
"""Pillow format names we decode; Image.open never even tries the other plugins."""

# MPO has no opener of its own: the JPEG opener returns MPO files.
_OPENERS = sorted(ALLOWED_FORMATS - {"MPO"})

MEDIA_TYPES: Mapping[str, str] = MappingProxyType(
    {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
)
"""Encode format -> MIME type."""

_FORMAT_ALIASES = {"jpg": "jpeg"}
_SAVE_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_WHITE = (255, 255, 255)


@dataclass(frozen=True)
class ImageInfo:
    """What the header says about an image, read without decoding pixels."""

    format: str
    width: int
    height: int
    mode: str
    frames: int


def probe_image(data: bytes, *, max_pixels: int) -> ImageInfo:
    """Validate format, size and frame count from the header alone; never decodes pixels."""
    with _open(data, max_pixels) as im:
        return _info(im)


def decode_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """Probe, fully decode, apply EXIF orientation and convert to an 8-bit sRGB RGB image."""
    with _open(data, max_pixels) as im:
        _info(im)
        try:
            im.load()
        except ImageError:
            raise
        except MemoryError:
            raise
        except Exception as e:
            # Pillow signals corrupt input with many types (OSError on truncation,
            # SyntaxError, ValueError, struct.error, zlib.error...): all mean "bad bytes".
            raise InvalidImage(f"cannot decode {im.format} image: {e}") from e
        icc = im.info.get("icc_profile")
        # A broken EXIF block is not worth refusing the picture over. In place: _to_srgb makes
        # the one copy an upright picture needs (a few ms at 1200x1528).
        with contextlib.suppress(Exception):
            ImageOps.exif_transpose(im, in_place=True)
        out = _to_srgb(im, icc)
    out.info = {}  # the ICC profile / EXIF described the source, not this RGB result
    return out


def load_image(path: str | os.PathLike[str], *, max_pixels: int) -> Image.Image:
    """Read a file and decode_image its bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InvalidImage(f"cannot read image file {os.fspath(path)!r}: {e.strerror or e}") from e
    return decode_image(data, max_pixels=max_pixels)


def encode_image(img: Image.Image, fmt: str = "png", *, quality: int = 92) -> bytes:
    """Encode as png, jpeg (alias jpg) or webp, without any metadata."""
    key = fmt.lower().lstrip(".")
    key = _FORMAT_ALIASES.get(key, key)
    if key not in MEDIA_TYPES:
        raise UnsupportedImage(
            f"cannot encode as {fmt!r}; supported: {', '.join(sorted(MEDIA_TYPES))} (or jpg)",
            field="format",
        )
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    keep = ("RGB", "L") if key == "jpeg" else ("RGB", "RGBA", "L")
    clean = img.copy() if img.mode in keep else img.convert("RGB")
    # Pillow writes im.info (icc_profile, exif, text chunks) back out for some formats.
    clean.info = {}
    buf = io.BytesIO()
    if key == "png":
        clean.save(buf, "PNG")
    else:
        clean.save(buf, _SAVE_NAMES[key], quality=quality)
    return buf.getvalue()


def resize_long_side(img: Image.Image, size: int) -> Image.Image:
    """Resize, keeping the aspect ratio, so the longer side is `size` pixels."""
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    w, h = img.size
    if max(w, h) == size:
        return img.copy()
    long = max(w, h)
    new = (size, max(1, round(h * size / w))) if w == long else (max(1, round(w * size / h)), size)
    # LANCZOS keeps detail when shrinking; BICUBIC rings less when enlarging.
    resample = Image.Resampling.LANCZOS if size < long else Image.Resampling.BICUBIC
    return img.resize(new, resample)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Image.open restricted to ALLOWED_FORMATS, with our own pixel limit applied."""
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    if not data:
        raise InvalidImage("image data is empty")
    try:
        with warnings.catch_warnings():
            # Pillow's global MAX_IMAGE_PIXELS is not our limit: ours is checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=_OPENERS)
    except Image.DecompressionBombError as e:
        # Only raised far above any sane limit; the size is only in Pillow's message.
        m = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{m.group(1)} pixels" if m else "larger than Pillow's decompression-bomb limit"
        raise ImageTooLarge(f"image is {size}; the limit is {max_pixels}") from e
    except UnidentifiedImageError as e:
        raise _unidentified(data) from e
    except MemoryError:
        raise
    except Exception as e:
        raise InvalidImage(f"cannot read image header: {e}") from e
    w, h = im.size
    if w < 1 or h < 1:
        im.close()
        raise InvalidImage(f"image has an empty size {w}x{h}")
    if w * h > max_pixels:
        im.close()
        raise ImageTooLarge(f"image is {w}x{h} = {w * h} pixels; the limit is {max_pixels}")
    return im


def _unidentified(data: bytes) -> ImageError:
    """Tell a real but refused format apart from bytes that are no image at all."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Header parse only, never load(): names the format for the error message.
            with Image.open(io.BytesIO(data)) as other:
                fmt = other.format
    except Exception:
        return InvalidImage(f"data is not a recognized image ({len(data)} bytes)")
    return UnsupportedImage(
        f"image format {fmt} is not accepted; accepted: {', '.join(sorted(ALLOWED_FORMATS))}"
    )


def _info(im: Image.Image) -> ImageInfo:
    """Header facts, refusing animations and multi-page files."""
    try:
        frames = int(getattr(im, "n_frames", 1))
    except Exception as e:
        raise InvalidImage(f"cannot read the frames of the {im.format} image: {e}") from e
    # MPO frames are stills (stereo pair, preview) that belong to the first, not an animation.
    if frames > 1 and im.format != "MPO":
        raise AnimatedImage(f"{im.format} image has {frames} frames; only single-frame images are accepted")
    return ImageInfo(im.format or "", im.width, im.height, im.mode, frames)


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Any decoded mode -> 8-bit RGB in sRGB, alpha composited on white."""
    mode = im.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        im = _high_depth_to_l(im)
    elif mode == "1":
        im = im.convert("L")
    elif mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("PA", "RGBa", "La") or (mode in ("L", "RGB") and "transparency" in im.info):
        # palette / premultiplied alpha and PNG tRNS colour keys become a plain alpha channel
        im = im.convert("RGBA")
    alpha = None
    if im.mode in ("RGBA", "LA"):
        alpha = im.getchannel("A")
        im = im.convert(im.mode[:-1])
    rgb = _icc_to_srgb(im, icc) if icc else None
    if rgb is None:
        try:
            rgb = im.convert("RGB")
        except ValueError as e:
            raise UnsupportedImage(f"image mode {mode} cannot be converted to RGB") from e
    if alpha is not None:
        base = Image.new("RGB", rgb.size, _WHITE)
        base.paste(rgb, mask=alpha)
        rgb = base
    return rgb


def _high_depth_to_l(im: Image.Image) -> Image.Image:
    """16-bit / 32-bit / float grayscale -> 8-bit L by scaling, not clipping."""
    a = np.asarray(im)
    if im.mode == "F":
        a = np.nan_to_num(a.astype(np.float64))
        # Float images are conventionally 0..1; anything else is treated as 0..255.
        a = a * 255.0 if a.size and a.max() <= 1.0 else a
    else:
        # "I" is how 16-bit PNG/TIFF samples surface in some Pillow versions: same 0..65535 range.
        a = np.clip(a.astype(np.float64), 0, 65535) / 257.0
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


@functools.cache
def _srgb_profile():
    """The sRGB target profile, built once."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _icc_to_srgb(im: Image.Image, icc: bytes) -> Image.Image | None:
    """Convert from the embedded profile to sRGB; None when that cannot be done."""
    if ImageCms is None or im.mode not in ("RGB", "CMYK", "L"):
        return None
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(im, src, _srgb_profile(), outputMode="RGB")
    except Exception:
        # Broken or mismatched profiles (e.g. an RGB profile on a gray image) are common
        # in the wild; a plain conversion beats refusing the image.
        return None
