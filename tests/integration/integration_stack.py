"""Helpers of the integration suite: real API and worker processes, tiny images and params.

Everything listens on free loopback ports in a temp dir, so runs never touch a shared Redis.
Worker and API output goes to log files, printed when a test fails.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import httpx
from PIL import Image

from api.client import NstClient
from api.stack import free_port, spawn, stop_all, wait_until

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"key-alice": "alice", "key-alice-2": "alice", "key-bob": "bob", "key-carol": "carol",
        "key-dave": "dave"}

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


class Stack:
    """An API server and any number of workers sharing one Redis, queue and store."""

    def __init__(self, name: str, redis_url: str, tmp: Path, **env: str) -> None:
        self.name, self.tmp, self.redis_url = name, tmp / name, redis_url
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "NST_REDIS_URL": redis_url,
            "NST_QUEUE": f"q-{name}",
            "NST_DATA_DIR": str(self.tmp / "data"),
            "NST_API_KEYS": ",".join(f"{k}:{t}" for k, t in KEYS.items()),
            "NST_LEASE_SECONDS": "4",
            "NST_REAPER_INTERVAL_SECONDS": "1",
            "NST_PROGRESS_INTERVAL_SECONDS": "0.1",
            "NST_DEVICE": "cpu",
            **env,
        }
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.url = ""

    def _spawn(self, kind: str, *args: str) -> subprocess.Popen:
        log = self.tmp / f"{kind}-{len(self.logs)}.log"
        self.logs.append(log)
        proc = spawn(kind, *args, env=self.env, cwd=self.tmp, stdout=log.open("wb"),
                     stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start_api(self) -> Stack:
        """Start the API and wait until it is ready."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        api = self._spawn("api", "--port", str(port))
        wait_until(lambda: httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200, 30, api)
        return self

    def start_worker(self) -> subprocess.Popen:
        """Start one worker (concurrency 1) and wait until it consumes the queue."""
        proc = self._spawn("worker", "--concurrency", "1")
        log = self.logs[-1]
        wait_until(lambda: b" ready." in log.read_bytes(), 60, proc)
        return proc

    def client(self, key: str = "key-alice") -> NstClient:
        """An HTTP client authenticated as the key's tenant."""
        return NstClient(self.url, key, timeout=30)

    def worker_lines(self, needle: str) -> list[str]:
        """Lines of every worker log that contain `needle`."""
        return [line for log in self.logs if log.name.startswith("worker")
                for line in log.read_text(errors="replace").splitlines() if needle in line]

    def dump_logs(self) -> str:
        """The tail of every process log, for failure reports."""
        return "\n".join(f"--- {log.name}\n" + "\n".join(
            log.read_text(errors="replace").splitlines()[-40:]) for log in self.logs)

    def stop(self) -> None:
        """Stop every process of this stack."""
        stop_all(list(reversed(self.procs)), timeout=15)


