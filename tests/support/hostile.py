"""Builders of hostile and unusual requests for the security suite, and views of what they changed.

Every image is made here with Pillow (nothing from outside the repository); multipart bodies are
built by hand so that part names, file names and headers can be exactly as hostile as wanted.
"""

from __future__ import annotations

import io
import re
import secrets
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import redis
from PIL import Image

from tests.support.stack import Stack

BOUNDARY = "sec-boundary-7f3a9c"
_RUN = secrets.token_hex(6)
# Distinctive keys (easy to spot in a log): alice has two (rotation), bob one.
ALICE_KEY, ALICE_KEY_2, BOB_KEY = (f"sk-{who}-{_RUN}" for who in ("alice", "alice-rotated", "bob"))
WRONG_KEY = f"sk-wrong-{_RUN}"
API_KEYS = f"{ALICE_KEY}:alice,{ALICE_KEY_2}:alice,{BOB_KEY}:bob"
UPLOAD_LIMIT = 64 * 1024  # bytes per uploaded file on the security stack: cheap to exceed
# Uploads, and the marker that proves API and workers share the store (service/connections.py).
STORED_NAME = re.compile(
    r"^(uploads/[0-9a-f]{32}/(content|style-\d+)\.png|system/marker-[0-9a-f]{32}\.txt)$")
JOB_ID = re.compile(r"^[0-9a-f]{32}$")

# Tiny engine work, so an accepted job costs nothing even if a worker picked it up.
TINY_PARAMS = '{"size": 32, "scales": [32], "iterations": [1], "optimizer": "adam"}'


# --- images -------------------------------------------------------------------------------------

def _save(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def rgb(size: tuple[int, int] = (48, 32), fmt: str = "PNG") -> bytes:
    """A small RGB gradient."""
    g = Image.linear_gradient("L").resize(size)
    return _save(Image.merge("RGB", (g, g.rotate(90), g.transpose(Image.Transpose.FLIP_LEFT_RIGHT))),
                 fmt)


def cmyk_jpeg() -> bytes:
    return _save(Image.open(io.BytesIO(rgb())).convert("CMYK"), "JPEG")


def png16() -> bytes:
    """A 16-bit grayscale PNG (mode I;16)."""
    img = Image.linear_gradient("L").resize((40, 30)).convert("I")
    img = img.point(lambda v: v * 257).convert("I;16")
    data = _save(img, "PNG")
    assert data[24] == 16, "Pillow did not write a 16-bit PNG"  # IHDR bit depth
    return data


def grayscale() -> bytes:
    return _save(Image.linear_gradient("L").resize((40, 30)), "PNG")


def rgba() -> bytes:
    img = Image.open(io.BytesIO(rgb())).convert("RGBA")
    img.putalpha(Image.linear_gradient("L").resize(img.size))
    return _save(img, "PNG")


def exif_rotated(size: tuple[int, int] = (60, 20)) -> bytes:
    """A JPEG stored wide (60x20) whose EXIF Orientation 6 says: display it rotated, tall."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(Image.open(io.BytesIO(rgb(size))), "JPEG", exif=exif.tobytes())


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    return data


def other_format(fmt: str = "TGA") -> bytes:
    """A real image in a format the service does not accept."""
    return _save(Image.open(io.BytesIO(rgb())), fmt)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny valid PNG whose IHDR is rewritten to declare width x height (CRC fixed)."""
    data = bytearray(rgb((8, 8)))
    ihdr = 8 + 8  # signature, then length + "IHDR"
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4:ihdr + 13]))
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def noise_png(n_bytes: int) -> bytes:
    """A valid PNG of random noise at least `n_bytes` long (noise does not compress)."""
    side = 64
    while True:
        data = _save(Image.effect_noise((side, side), 100).convert("RGB"), "PNG")
        if len(data) >= n_bytes:
            return data
        side *= 2


CONTENT = rgb()
STYLE = rgb((32, 32), "JPEG")


# --- requests -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    """One multipart part; `filename=None` makes it a plain form field."""

    name: str
    data: bytes
    filename: str | None = "x.png"
    content_type: str | None = "application/octet-stream"


def multipart(parts: list[Part], boundary: str = BOUNDARY) -> bytes:
    """A multipart/form-data body, byte for byte as given (names are not escaped)."""
    out = bytearray()
    for p in parts:
        disposition = f'form-data; name="{p.name}"'
        if p.filename is not None:
            disposition += f'; filename="{p.filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode("utf-8",
                                                                                "surrogateescape")
        if p.filename is not None and p.content_type:
            out += f"Content-Type: {p.content_type}\r\n".encode()
        out += b"\r\n" + p.data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def job_parts(content: bytes = CONTENT, styles: tuple[bytes, ...] = (STYLE,),
              params: str | None = TINY_PARAMS, *, content_name: str = "c.png",
              extra: tuple[Part, ...] = ()) -> list[Part]:
    """The parts of a job request, each replaceable."""
    parts = [Part("content", content, content_name)]
    parts += [Part("style", s, f"s{i}.jpg") for i, s in enumerate(styles)]
    if params is not None:
        parts.append(Part("params", params.encode(), None))
    return parts + list(extra)


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


# --- what a request changed ---------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    """What a request could have changed: job records, queue messages, stored files."""

    jobs_created: int  # the job store's sequence number: +1 per created job
    queued: int  # the job store's queued set
    messages: int  # Celery messages waiting in the broker's list
    db_keys: int
    files: frozenset[str]  # every file under the data dir (store paths relative to the store)


class Backend:
    """Read-only views of a stack's Redis database and data directory."""

    def __init__(self, stack: Stack) -> None:
        self.r = redis.Redis.from_url(stack.redis_url, decode_responses=True)
        self.queue = stack.env["NST_QUEUE"]
        self.data_dir = Path(stack.env["NST_DATA_DIR"])
        self.store_root = self.data_dir / "store"

    def files(self) -> frozenset[str]:
        if not self.data_dir.exists():
            return frozenset()
        return frozenset(
            p.relative_to(self.store_root).as_posix() if p.is_relative_to(self.store_root)
            else p.as_posix() for p in self.data_dir.rglob("*") if p.is_file())

    def snapshot(self) -> Snapshot:
        return Snapshot(int(self.r.get("nst:seq") or 0), self.r.zcard("nst:queued"),
                        self.r.llen(self.queue), self.r.dbsize(), self.files())

    def close(self) -> None:
        self.r.close()
