"""What the asynchronous replication window loses: job creates acknowledged by a master that is
SIGKILLed under load, and missing on its replica (the copy Sentinel would promote).

    .venv/bin/python bench/replication_window.py --rounds 10

Each round starts a master and a replica (AOF each) on loopback in a temporary directory;
--writers threads create jobs through the job store as fast as they can (WAIT 0, then WAIT 1,
a round each), the master is SIGKILLed after a random 1-3 s, and every create the master
acknowledged is looked up on the replica. Prints, per setting, creates per second and the
acknowledged creates lost per kill.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import redis

from cli.redis_servers import RedisServer
from service.jobstore import DEFAULT_PREFIX, JobStore, new_job_id

PARAMS = {"size": 32}


def writer(store: JobStore, acked: list[str], stop: threading.Event) -> None:
    """Create jobs until the master dies; keep the ids it acknowledged."""
    while not stop.is_set():
        job_id = new_job_id()
        try:
            store.create(job_id, job_id, PARAMS, {}, ttl=600, max_active=10, max_queue=10**9)
        except (redis.ConnectionError, redis.TimeoutError):
            return  # the master is gone: this create was never acknowledged
        acked.append(job_id)


def one_round(tmp: Path, wait_replicas: int, writers: int, rng: random.Random) -> tuple[float, int]:
    """One kill under load: creates per second before it, and acknowledged creates lost."""
    master = RedisServer(tmp / "master").start()
    replica = RedisServer(tmp / "replica", replica_of=master).start()
    try:
        acked: list[str] = []
        stop = threading.Event()
        threads = [threading.Thread(target=writer, daemon=True, args=(
            JobStore(master.client(), wait_replicas=wait_replicas, wait_timeout_ms=500), acked, stop))
            for _ in range(writers)]
        began = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(rng.uniform(1, 3))
        master.kill()
        ran = time.monotonic() - began
        stop.set()
        for t in threads:
            t.join(10)
        on_replica = replica.client()
        pipe = on_replica.pipeline(transaction=False)
        for job_id in acked:
            pipe.exists(f"{DEFAULT_PREFIX}job:{job_id}")
        lost = sum(1 for present in pipe.execute() if not present)
        return len(acked) / ran, lost
    finally:
        replica.stop()
        master.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="kills per setting")
    parser.add_argument("--writers", type=int, default=4, help="threads creating jobs")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print("| setting | kills | creates/s | lost per kill: mean | max | kills that lost any |")
    print("|---|---:|---:|---:|---:|---:|")
    for wait_replicas in (0, 1):
        rates, losses = [], []
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="nst-window-") as tmp:
                rate, lost = one_round(Path(tmp), wait_replicas, args.writers, rng)
            rates.append(rate)
            losses.append(lost)
        print(f"| WAIT {wait_replicas} | {args.rounds} | {statistics.fmean(rates):.0f} | "
              f"{statistics.fmean(losses):.1f} | {max(losses)} | {sum(1 for n in losses if n)} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
