"""nst_core.image: every test image is generated in memory with Pillow."""

from __future__ import annotations

import io
import resource
import struct
import time
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile

from nst_core.errors import AnimatedImage, ImageTooLarge, InvalidImage, UnsupportedImage
from nst_core.image import (
    ALLOWED_FORMATS,
    MEDIA_TYPES,
    ImageInfo,
    decode_image,
    encode_image,
    load_image,
    probe_image,
    resize_long_side,
)

LIMIT = 16_000_000


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _noise(w: int = 64, h: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def _solid(color, size=(32, 24)) -> Image.Image:
    return Image.new("RGB", size, color)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(width: int, height: int) -> bytes:
    """A well-formed PNG whose IHDR declares width x height RGB but carries almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _frames(n: int = 3, mode: str = "RGB") -> list[Image.Image]:
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    return [Image.new(mode, (16, 16), colors[i % len(colors)]) for i in range(n)]


def _px(img: Image.Image, xy) -> tuple[int, int, int]:
    return img.getpixel(xy)


def _close(a, b, tol: int) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


# --- valid inputs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "kw", "tol"),
    [
        ("PNG", {}, 0),
        ("JPEG", {"quality": 95}, 12),
        ("WEBP", {"quality": 95}, 12),
        ("BMP", {}, 0),
        ("TIFF", {}, 0),
        ("GIF", {}, 8),
    ],
)
def test_valid_formats_decode_to_rgb(fmt, kw, tol):
    data = _save(_solid((200, 60, 30)), fmt, **kw)
    info = probe_image(data, max_pixels=LIMIT)
    assert info == ImageInfo(format=fmt, width=32, height=24, mode=info.mode, frames=1)
    img = decode_image(data, max_pixels=LIMIT)
    assert type(img) is Image.Image and img.mode == "RGB" and img.size == (32, 24)
    assert img.info == {}
    assert _close(_px(img, (5, 5)), (200, 60, 30), tol)


def test_mpo_with_two_frames_is_a_still_image():
    data = _save(_solid((10, 200, 10)), "MPO", save_all=True, append_images=[_solid((200, 10, 10))])
    info = probe_image(data, max_pixels=LIMIT)
    assert info.format == "MPO" and info.frames == 2
    img = decode_image(data, max_pixels=LIMIT)
    assert _close(_px(img, (3, 3)), (10, 200, 10), 12)


def test_decoded_image_is_detached_from_input():
    data = bytearray(_save(_noise(), "PNG"))
    img = decode_image(bytes(data), max_pixels=LIMIT)
    before = img.tobytes()
    data[:] = b"\x00" * len(data)
    assert img.tobytes() == before


def test_truncated_loading_is_not_enabled_globally():
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


def test_allowed_formats_and_media_types():
    assert {"JPEG", "PNG", "WEBP", "MPO"} <= ALLOWED_FORMATS
    assert dict(MEDIA_TYPES) == {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


# --- refused inputs ----------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"hello, this is plain text, not an image\n" * 3])
def test_non_image_is_invalid(data):
    with pytest.raises(InvalidImage):
        probe_image(data, max_pixels=LIMIT)
    with pytest.raises(InvalidImage):
        decode_image(data, max_pixels=LIMIT)


def test_empty_message():
    with pytest.raises(InvalidImage, match="empty"):
        decode_image(b"", max_pixels=LIMIT)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_is_invalid(fmt):
    data = _save(_noise(256, 256), fmt)
    cut = data[: len(data) // 2]
    probe_image(cut, max_pixels=LIMIT)  # the header is intact
    with pytest.raises(InvalidImage, match="cannot decode"):
        decode_image(cut, max_pixels=LIMIT)


def test_unaccepted_format_is_unsupported():
    data = _save(_solid((1, 2, 3)), "PPM")
    with pytest.raises(UnsupportedImage, match="PPM"):
        probe_image(data, max_pixels=LIMIT)


def test_over_max_pixels():
    data = _save(_solid((0, 0, 0), (100, 100)), "PNG")
    with pytest.raises(ImageTooLarge) as ei:
        decode_image(data, max_pixels=5000)
    assert ei.value.message == "image is 100x100 = 10000 pixels; the limit is 5000"
    assert ei.value.code == "image_too_large"
    assert decode_image(data, max_pixels=10_000).size == (100, 100)


@pytest.mark.parametrize("max_pixels", [LIMIT, 10**12])
def test_decompression_bomb_header_refused_fast(max_pixels):
    data = _png_header_only(50000, 50000)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    for fn in (probe_image, decode_image):
        with pytest.raises(ImageTooLarge, match="2500000000 pixels"):
            fn(data, max_pixels=max_pixels)
    assert time.perf_counter() - t0 < 1.0
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown_kib < 100 * 1024  # 50000x50000 RGB would be 7.5 GB


def test_bomb_message_names_dimensions_and_no_warning_leaks():
    data = _png_header_only(12000, 12000)  # above Pillow's warning threshold, below its error
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageTooLarge) as ei:
            probe_image(data, max_pixels=LIMIT)
    assert ei.value.message == "image is 12000x12000 = 144000000 pixels; the limit is 16000000"


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP", "TIFF"])
def test_animated_or_multiframe_refused(fmt):
    first, *rest = _frames(3)
    data = _save(first, fmt, save_all=True, append_images=rest, duration=100)
    with pytest.raises(AnimatedImage, match="3 frames"):
        probe_image(data, max_pixels=LIMIT)
    with pytest.raises(AnimatedImage):
        decode_image(data, max_pixels=LIMIT)


# --- conversions -------------------------------------------------------------------------


def test_cmyk_jpeg_to_rgb():
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red ink
    cmyk.paste((255, 0, 255, 0), (16, 0, 32, 32))  # pure green ink
    data = _save(cmyk, "JPEG", quality=95)
    assert probe_image(data, max_pixels=LIMIT).mode == "CMYK"
    img = decode_image(data, max_pixels=LIMIT)
    assert img.mode == "RGB"
    assert _close(_px(img, (4, 16)), (255, 0, 0), 20)
    assert _close(_px(img, (28, 16)), (0, 255, 0), 20)


def test_16bit_grayscale_png_is_scaled_not_clipped():
    arr = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    data = _save(Image.fromarray(arr), "PNG")
    assert probe_image(data, max_pixels=LIMIT).mode.startswith("I")
    img = decode_image(data, max_pixels=LIMIT)
    got = [_px(img, (x, 0)) for x in range(4)]
    assert got == [(0, 0, 0), (1, 1, 1), (128, 128, 128), (255, 255, 255)]


def test_grayscale():
    img = decode_image(_save(Image.new("L", (8, 8), 77), "PNG"), max_pixels=LIMIT)
    assert img.mode == "RGB" and _px(img, (0, 0)) == (77, 77, 77)


def test_palette_with_transparency_on_white():
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 10, 20, 200] + [0] * 762)
    pal.paste(0, (0, 0, 4, 8))
    data = _save(pal, "PNG", transparency=0)
    img = decode_image(data, max_pixels=LIMIT)
    assert _px(img, (1, 1)) == (255, 255, 255)
    assert _px(img, (6, 1)) == (10, 20, 200)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_composited_on_white(mode):
    rgba = Image.new("RGBA", (8, 1), (0, 0, 255, 255))
    rgba.putpixel((0, 0), (255, 0, 0, 0))
    rgba.putpixel((1, 0), (0, 0, 0, 128))
    data = _save(rgba.convert(mode), "PNG")
    img = decode_image(data, max_pixels=LIMIT)
    assert _px(img, (0, 0)) == (255, 255, 255)
    assert _close(_px(img, (1, 0)), (127, 127, 127), 1)
    if mode == "RGBA":
        assert _px(img, (5, 0)) == (0, 0, 255)


def test_exif_orientation_applied():
    src = Image.new("RGB", (40, 20), (255, 0, 0))
    src.paste((0, 0, 255), (20, 0, 40, 20))  # stored: left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    data = _save(src, "JPEG", quality=95, exif=exif.tobytes())
    img = decode_image(data, max_pixels=LIMIT)
    assert img.size == (20, 40)
    assert _close(_px(img, (10, 5)), (255, 0, 0), 20)
    assert _close(_px(img, (10, 35)), (0, 0, 255), 20)


def test_icc_tagged_image_decodes():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for fmt in ("PNG", "JPEG"):
        data = _save(_solid((180, 90, 40)), fmt, icc_profile=icc)
        assert Image.open(io.BytesIO(data)).info.get("icc_profile")
        img = decode_image(data, max_pixels=LIMIT)
        assert img.mode == "RGB" and "icc_profile" not in img.info
        assert _close(_px(img, (3, 3)), (180, 90, 40), 6)


def test_broken_icc_profile_falls_back():
    data = _save(_solid((180, 90, 40)), "PNG", icc_profile=b"not a real profile" * 8)
    img = decode_image(data, max_pixels=LIMIT)
    assert _px(img, (3, 3)) == (180, 90, 40)


# --- encode, load, resize ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "pil"), [("png", "PNG"), ("jpeg", "JPEG"), ("jpg", "JPEG"), ("webp", "WEBP"), ("PNG", "PNG")]
)
def test_encode_roundtrip(fmt, pil):
    src = _solid((30, 140, 220), (33, 17))
    data = encode_image(src, fmt)
    assert Image.open(io.BytesIO(data)).format == pil
    back = decode_image(data, max_pixels=LIMIT)
    assert back.size == (33, 17)
    assert _close(_px(back, (16, 8)), (30, 140, 220), 0 if pil == "PNG" else 10)


def test_encode_strips_metadata_and_converts_mode():
    src = _solid((1, 2, 3))
    src.info["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src.info["exif"] = Image.Exif().tobytes()
    for fmt in MEDIA_TYPES:
        out = Image.open(io.BytesIO(encode_image(src, fmt)))
        assert "icc_profile" not in out.info and "exif" not in out.info
        assert not out.getexif()
    cmyk = Image.new("CMYK", (4, 4), (0, 0, 0, 0))
    assert Image.open(io.BytesIO(encode_image(cmyk, "jpeg"))).mode == "RGB"


def test_encode_quality_changes_size():
    src = _noise(128, 128)
    assert len(encode_image(src, "jpeg", quality=20)) < len(encode_image(src, "jpeg", quality=95))


def test_encode_unknown_format():
    with pytest.raises(UnsupportedImage, match="gif"):
        encode_image(_solid((0, 0, 0)), "gif")


def test_load_image(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(_save(_solid((5, 6, 7)), "PNG"))
    assert _px(load_image(path, max_pixels=LIMIT), (0, 0)) == (5, 6, 7)
    missing = tmp_path / "nope.png"
    with pytest.raises(InvalidImage, match="nope.png"):
        load_image(str(missing), max_pixels=LIMIT)


@pytest.mark.parametrize(
    ("size_in", "long_side", "size_out"),
    [
        ((400, 200), 100, (100, 50)),
        ((200, 400), 100, (50, 100)),
        ((1000, 2), 10, (10, 1)),
        ((30, 20), 90, (90, 60)),
        ((64, 64), 64, (64, 64)),
    ],
)
def test_resize_long_side(size_in, long_side, size_out):
    src = _solid((9, 9, 9), size_in)
    out = resize_long_side(src, long_side)
    assert out.size == size_out and out is not src
