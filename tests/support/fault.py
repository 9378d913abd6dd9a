"""Helpers of the fault suite: a private redis-server that can be killed and restarted on its AOF,
the integration suite's real API and worker processes (reused), and the invariant every fault
test ends with.
"""

from __future__ import annotations

import io
import signal
import subprocess
import time
from pathlib import Path

import psutil
import redis
from PIL import Image

from cli.stack import ServiceStack, free_port, start_redis
from client import NstClient
from service.contract import JobStatus
from service.jobstore import JobStore
from tests.support.stack import Stack

# Short leases and reaper passes so a lost worker is noticed in seconds, not minutes.
FAULT_ENV = {
    "NST_LEASE_SECONDS": "4",
    "NST_REAPER_INTERVAL_SECONDS": "0.5",
    "NST_PROGRESS_INTERVAL_SECONDS": "0.1",
    "NST_MAX_ATTEMPTS": "3",
    # The suite's processes share two cores (and CI's with other jobs): one torch thread per
    # worker process keeps a busy machine from slowing the engine down several-fold.
    "NST_TORCH_THREADS": "1",
}


class RedisServer:
    """A redis-server with AOF (`appendfsync everysec`) in its own directory, on a fixed port,
    so that it can be SIGKILLed and started again on the same data, as a crashed host would."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        """Start (or restart) the server and wait until it answers PING with its data loaded."""
        self.proc, url = start_redis(self.dir, self.port)
        assert url == self.url
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown save, no AOF rewrite; what was fsynced is what survives."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True, socket_connect_timeout=1)


class FaultStack(Stack):
    """An integration Stack whose API can be restarted on the same port and whose workers can be
    killed whole or pool child by pool child."""

    def __init__(self, name: str, server: RedisServer, tmp: Path, **env: str) -> None:
        super().__init__(name, server.url, tmp, **{**FAULT_ENV, **env})
        self.redis = server
        self.api_port = 0
        self.api: subprocess.Popen | None = None

    def start_api(self, port: int | None = None) -> FaultStack:  # type: ignore[override]
        """Start the API (on `port`, else the previous one, else a free one) and wait for it."""
        self.api_port = port or self.api_port or free_port()
        self.api = ServiceStack.start_api(self, self.api_port, timeout=30)
        return self

    def stop_api(self, sig: int) -> None:
        """Stop the API process with `sig` (SIGTERM: graceful; SIGKILL: a crash)."""
        assert self.api is not None
        self.api.send_signal(sig)
        self.api.wait(20)

    def workers(self) -> list[subprocess.Popen]:
        """The worker main processes still alive."""
        return [p for p in self.procs if p.args[3:4] == ["worker"] and p.poll() is None]

    def kill_workers(self) -> None:
        """SIGKILL every worker process and its pool children at once, as a crashed host would."""
        for proc in self.workers():
            parent = psutil.Process(proc.pid)
            for p in [*parent.children(recursive=True), parent]:
                p.kill()
            proc.wait()

    def store(self) -> JobStore:
        """A job store on the stack's Redis, for looking at records directly."""
        return JobStore(self.redis.client())


def wait_view(client: NstClient, job_id: str, done, timeout: float = 120) -> dict:
    """Poll the job through the API until `done(view)`; answers other than 200 are retried."""
    deadline = time.monotonic() + timeout
    view: dict = {}
    while time.monotonic() < deadline:
        try:
            view = client.get(job_id)
        except Exception as e:  # the API or Redis may be restarting
            view = {"error": repr(e)}
        else:
            if done(view):
                return view
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not there in {timeout} s: {view}")


def wait_running(client: NstClient, job_id: str, timeout: float = 90) -> dict:
    """Wait until the job runs and has made at least one engine step."""
    return wait_view(client, job_id, lambda v: v["status"] == "running"
                     and (v.get("progress") or {}).get("step", 0) > 0, timeout)


def assert_invariant(stack: FaultStack, client: NstClient, expected: dict[str, str],
                     timeout: float = 120) -> dict[str, dict]:
    """The promise every fault test ends with, for every job it had accepted.

    `expected` maps job id to `succeeded`, `canceled` or `failed:<code>`. Each job reaches that
    state within `timeout`; none stays queued or running; a failed job states its code; none ran
    to completion twice (one `job finished` per job in all worker logs, and the store's
    terminal counters add up); every succeeded job's result is a readable image.
    Returns the final views.
    """
    deadline = time.monotonic() + timeout
    views = {}
    for job_id in expected:
        left = max(1.0, deadline - time.monotonic())
        views[job_id] = wait_view(client, job_id, lambda v: JobStatus(v["status"]).is_terminal, left)
    store = stack.store()
    finished = stack.worker_events("job finished")
    for job_id, want in expected.items():
        view = views[job_id]
        status, _, code = want.partition(":")
        assert view["status"] == status, view
        if status == "failed":
            assert view["error"] and view["error"]["code"] == code, view
        runs = [e for e in finished if e.get("job_id") == job_id]
        assert len(runs) <= 1, f"job {job_id} finished {len(runs)} times: {runs}"
        if status == "succeeded":
            assert [e["status"] for e in runs] == ["succeeded"], runs
            img = Image.open(io.BytesIO(client.result(job_id)))
            img.load()
            assert max(img.size) == 64
        record = store.get(job_id)
        assert record is not None and record.status == status
    r = store.r
    assert r.zcard("nst:queued") == 0 and r.zcard("nst:running") == 0, "a job stayed queued/running"
    counts = store.status_counts()
    for status in ("succeeded", "canceled", "failed"):
        n = sum(1 for w in expected.values() if w.partition(":")[0] == status)
        assert counts[status] == n, (status, counts)  # each job reached its end exactly once
    return views

