"""The chaos soak's stack and its faults: a Redis (AOF) that is SIGKILLed and started again, an API
that is killed and restarted on its port, and workers that are SIGKILLed whole, lose a pool
process, or are frozen (SIGSTOP) for longer than their lease.

One fault at a time, at random intervals; each is recorded with the jobs running when it struck
(the only ones whose attempt it can have cut short).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil

from cli.redis_servers import RedisServer
from cli.stack import ServiceStack, free_port
from service.jobstore import DEFAULT_PREFIX

# Short leases and reaper passes so a lost attempt is noticed in seconds, one torch thread per
# worker on a shared machine, and a re-send of a job queued this long (its message may be lost).
CHAOS_ENV = {
    "NST_LEASE_SECONDS": "4",
    "NST_REAPER_INTERVAL_SECONDS": "0.5",
    "NST_PROGRESS_INTERVAL_SECONDS": "0.2",
    "NST_REQUEUE_AFTER_SECONDS": "30",
    "NST_MAX_ACTIVE_JOBS_PER_TENANT": "4",
    "NST_TORCH_THREADS": "1",
    "NST_DEVICE": "cpu",
}
FAULTS = ("worker_kill", "pool_kill", "worker_stop", "redis_kill", "api_restart")


class ChaosStack(ServiceStack):
    """Its own Redis (AOF on), one API process on a fixed port and N workers, in `tmp`."""

    def __init__(self, tmp: Path, workers: int, keys: dict[str, str]) -> None:
        self.redis = RedisServer(tmp / "redis").start()
        self.data = tmp / "data"
        super().__init__({**os.environ, **CHAOS_ENV, "NST_REDIS_URL": self.redis.url,
                          "NST_DATA_DIR": str(self.data),
                          "NST_API_KEYS": ",".join(f"{k}:{t}" for k, t in keys.items())},
                         log_dir=tmp)
        self.api_port = free_port()
        self.api = self.start_api(self.api_port, ready="/readyz")
        self.n_workers = workers
        for _ in range(workers):
            self.start_worker()

    def workers(self) -> list[subprocess.Popen]:
        """Worker main processes still alive."""
        return [p for p in self.procs if p.args[3:4] == ["worker"] and p.poll() is None]

    def restart_api(self, sig: int) -> None:
        """Stop the API with `sig` and start it again on the same port."""
        self.api.send_signal(sig)
        try:
            self.api.wait(20)
        except subprocess.TimeoutExpired:
            self.api.kill()
            self.api.wait()
        self.api = self.start_api(self.api_port, ready="/healthz")

    def top_up_workers(self, *, wait: bool) -> None:
        """Start workers until N are alive (after a SIGKILL)."""
        for _ in range(self.n_workers - len(self.workers())):
            self.start_worker(wait=wait, timeout=180)

    def stop(self, timeout: float = 30) -> None:
        """Every process (any frozen one thawed first), then Redis."""
        for proc in self.workers():
            signal_tree(proc, signal.SIGCONT)
        super().stop(timeout)
        self.redis.stop()


def tree(proc: subprocess.Popen) -> list[psutil.Process]:
    """The process and its descendants (a worker and its pool processes)."""
    try:
        parent = psutil.Process(proc.pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def signal_tree(proc: subprocess.Popen, sig: int) -> None:
    """Send `sig` to the process and its descendants."""
    for p in tree(proc):
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(sig)


@dataclass
class Fault:
    """One fault: its kind, when (seconds into the run), the jobs running then, a note."""

    kind: str
    at: float
    running: list[str]
    note: str = ""


class Injector(threading.Thread):
    """Injects one random fault every `interval` (min, max) seconds until `stop` is set."""

    def __init__(self, stack: ChaosStack, rng: random.Random, interval: tuple[float, float],
                 stop: threading.Event) -> None:
        super().__init__(name="chaos-injector", daemon=True)
        self.stack, self.rng, self.interval, self.stop_event = stack, rng, interval, stop
        self.faults: list[Fault] = []
        self.started = time.monotonic()

    def counts(self) -> Counter:
        """Faults injected, by kind."""
        return Counter(f.kind for f in self.faults)

    def touched(self) -> set[str]:
        """Every job that was running when some fault struck."""
        return {j for f in self.faults for j in f.running}

    def run(self) -> None:
        while not self.stop_event.wait(self.rng.uniform(*self.interval)):
            kind = self.rng.choice(FAULTS)
            fault = Fault(kind, round(time.monotonic() - self.started, 1), self._running())
            fault.note = getattr(self, kind)()
            self.faults.append(fault)

    def _running(self) -> list[str]:
        try:
            return self.stack.redis.client().zrange(f"{DEFAULT_PREFIX}running", 0, -1)
        except Exception:  # Redis is down: nothing can be running on it
            return []

    def _some_worker(self) -> subprocess.Popen | None:
        workers = self.stack.workers()
        return self.rng.choice(workers) if workers else None

    def worker_kill(self) -> str:
        """SIGKILL a worker and its pool at once (a lost host), then start another."""
        worker = self._some_worker()
        if worker is None:
            return "no worker"
        for p in tree(worker):
            p.kill()
        worker.wait()
        self.stack.top_up_workers(wait=False)
        return f"pid {worker.pid}"

    def pool_kill(self) -> str:
        """SIGKILL one pool process of a worker (a crash in the engine); Celery starts another."""
        worker = self._some_worker()
        children = tree(worker)[1:] if worker else []
        if not children:
            return "no pool process"
        child = self.rng.choice(children)
        child.kill()
        return f"pid {child.pid}"

    def worker_stop(self) -> str:
        """SIGSTOP a worker and its pool for longer than a lease, then SIGCONT."""
        worker = self._some_worker()
        if worker is None:
            return "no worker"
        frozen = float(CHAOS_ENV["NST_LEASE_SECONDS"]) + self.rng.uniform(1, 4)
        signal_tree(worker, signal.SIGSTOP)
        time.sleep(frozen)
        signal_tree(worker, signal.SIGCONT)
        return f"pid {worker.pid} for {frozen:.1f} s"

    def redis_kill(self) -> str:
        """SIGKILL Redis, then start it again on its AOF after a moment."""
        down = self.rng.uniform(0.5, 3)
        self.stack.redis.kill()
        time.sleep(down)
        self.stack.redis.start()
        return f"down {down:.1f} s"

    def api_restart(self) -> str:
        """Kill the API (SIGKILL or SIGTERM) and start it again on its port."""
        sig = self.rng.choice((signal.SIGKILL, signal.SIGTERM))
        self.stack.restart_api(sig)
        return signal.Signals(sig).name
