"""Helpers of the integration suite: real API and worker processes, tiny images and params.

Everything listens on free loopback ports in a temp dir, so runs never touch a shared Redis.
Worker and API output goes to log files, printed when a test fails.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

from cli.stack import ServiceStack
from client import NstClient

ROOT = Path(__file__).resolve().parents[2]  # the repository
KEYS = {"key-alice": "alice", "key-alice-2": "alice", "key-bob": "bob", "key-carol": "carol",
        "key-dave": "dave", "key-erin": "erin"}

# Tiny engine work: Adam at 32 then 64 px, five iterations in all.
TINY = {"size": 64, "scales": [32, 64], "iterations": [3, 2], "optimizer": "adam",
        "preview_every": 1}


def long_params(iterations: int = 400) -> dict:
    """A job slow enough to be observed running (and canceled or killed) mid-run."""
    return {"size": 64, "scales": [64], "iterations": [iterations], "optimizer": "adam",
            "preview_every": 2}


def png(size: tuple[int, int], seed: int) -> bytes:
    """A small synthetic PNG: a gradient (content) or noise (style), different per seed."""
    if seed % 2:
        img = Image.effect_noise(size, 40 + seed).convert("RGB")
    else:
        img = Image.linear_gradient("L").resize(size).convert("RGB")
        img = Image.merge("RGB", (img.split()[0], img.split()[1].rotate(90 + seed), img.split()[2]))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


CONTENT = png((96, 64), 0)
STYLE = png((64, 64), 1)


class Stack(ServiceStack):
    """An API server and any number of workers sharing one Redis, queue and store."""

    def __init__(self, name: str, redis_url: str, tmp: Path, **env: str) -> None:
        self.name, self.tmp, self.redis_url = name, tmp / name, redis_url
        self.tmp.mkdir(parents=True, exist_ok=True)
        super().__init__({
            **os.environ,
            "NST_REDIS_URL": redis_url,
            "NST_QUEUE": f"q-{name}",
            "NST_DATA_DIR": str(self.tmp / "data"),
            "NST_API_KEYS": ",".join(f"{k}:{t}" for k, t in KEYS.items()),
            "NST_LEASE_SECONDS": "4",
            "NST_REAPER_INTERVAL_SECONDS": "1",
            "NST_PROGRESS_INTERVAL_SECONDS": "0.1",
            "NST_DEVICE": "cpu",
            **env,
        }, log_dir=self.tmp)

    def start_api(self, port: int | None = None) -> Stack:  # type: ignore[override]
        """Start the API and wait until it is ready; returns the stack, for chaining."""
        super().start_api(port, timeout=30)
        return self

    def client(self, key: str = "key-alice") -> NstClient:
        """An HTTP client authenticated as the key's tenant."""
        return NstClient(self.url, key, timeout=30)

    def worker_lines(self, needle: str) -> list[str]:
        """Lines of every worker log that contain `needle`."""
        return self.log_lines("worker", needle)

    def worker_events(self, msg: str, *, exact: bool = True) -> list[dict]:
        """The JSON log lines of every worker whose message is `msg` (or contains it)."""
        return self.events("worker", msg, exact=exact)

    def stop(self, timeout: float = 15) -> None:
        """Stop every process of this stack."""
        super().stop(timeout)
