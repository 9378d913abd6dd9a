"""Helpers of the fault suite: the integration suite's real API and worker processes (reused) on a
Redis that can be killed and restarted on its AOF, or on a Sentinel group (cli/redis_servers.py),
and the invariant every fault test ends with.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import time
from pathlib import Path

import psutil
from PIL import Image

from api.schemas import JobView
from cli.redis_servers import RedisDeployment
from cli.stack import ServiceStack, free_port
from client import NstClient
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


class FaultStack(Stack):
    """An integration Stack whose API can be restarted on the same port and whose workers can be
    killed whole or pool child by pool child."""

    def __init__(self, name: str, server: RedisDeployment, tmp: Path, **env: str) -> None:
        super().__init__(name, server.url, tmp, **{**FAULT_ENV, **server.env(), **env})
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


def wait_view(client: NstClient, job_id: str, done, timeout: float = 120) -> JobView:
    """Poll the job through the API until `done(view)`; answers other than 200 are retried."""
    deadline = time.monotonic() + timeout
    view: JobView | str = "no answer"
    while time.monotonic() < deadline:
        try:
            view = client.get(job_id)
        except Exception as e:  # the API or Redis may be restarting
            view = repr(e)
        else:
            if done(view):
                return view
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not there in {timeout} s: {view}")


def wait_running(client: NstClient, job_id: str, timeout: float = 90) -> JobView:
    """Wait until the job runs and has made at least one engine step."""
    return wait_view(client, job_id, lambda v: v.status == "running"
                     and v.progress is not None and v.progress.step > 0, timeout)


def finish_lines(stack: FaultStack, job_ids: set[str], deadline: float) -> list[dict]:
    """The workers' `job finished` lines, once each of `job_ids` has one (or at the deadline): a
    worker logs it after its finish returns, which may be after a reader saw the job end."""
    while True:
        lines = stack.worker_events("job finished")
        if job_ids <= {e.get("job_id") for e in lines} or time.monotonic() >= deadline:
            return lines
        time.sleep(0.2)


def assert_invariant(stack: FaultStack, client: NstClient, expected: dict[str, str],
                     timeout: float = 120) -> dict[str, JobView]:
    """The promise every fault test ends with, for every job it had accepted.

    `expected` maps job id to `succeeded`, `canceled` or `failed:<code>`. Each job reaches that
    state within `timeout`; none stays queued or running; a failed job states its code; none ran
    to completion twice (one `job finished` per job in all worker logs, and the store's
    terminal counters add up); every succeeded job's result is a readable image whose bytes hash
    to the ETag its record holds.
    Returns the final views.
    """
    deadline = time.monotonic() + timeout
    views = {}
    for job_id in expected:
        left = max(1.0, deadline - time.monotonic())
        views[job_id] = wait_view(client, job_id, lambda v: v.status.is_terminal, left)
    store = stack.store()
    succeeded = {j for j, w in expected.items() if w == "succeeded"}
    finished = finish_lines(stack, succeeded, max(deadline, time.monotonic() + 5))
    for job_id, want in expected.items():
        view = views[job_id]
        status, _, code = want.partition(":")
        assert view.status == status, view
        if status == "failed":
            assert view.error and view.error.code == code, view
        runs = [e for e in finished if e.get("job_id") == job_id]
        assert len(runs) <= 1, f"job {job_id} finished {len(runs)} times: {runs}"
        record = store.get(job_id)
        assert record is not None and record.status == status
        if status == "succeeded":
            assert [e["status"] for e in runs] == ["succeeded"], runs
            served = client.result(job_id)
            # The bytes served are the ones the finishing attempt recorded, not another's.
            assert hashlib.sha256(served).hexdigest()[:32] == record.result_etag, job_id
            img = Image.open(io.BytesIO(served))
            img.load()
            assert max(img.size) == 64
    r = store.r
    assert r.zcard("nst:queued") == 0 and r.zcard("nst:running") == 0, "a job stayed queued/running"
    counts = store.status_counts()
    for status in ("succeeded", "canceled", "failed"):
        n = sum(1 for w in expected.values() if w.partition(":")[0] == status)
        assert counts[status] == n, (status, counts)  # each job reached its end exactly once
    return views

