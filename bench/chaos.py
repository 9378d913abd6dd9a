"""Chaos soak: tiny jobs from several clients while processes are killed at random, then the
invariants. Everything runs on loopback in a temporary directory and stops by itself.

    .venv/bin/python bench/chaos.py --minutes 15

Starts its own redis-server (appendonly yes), one API process and --workers workers. --clients
threads (a tenant each) keep two jobs in flight each, and cancel or delete some. Every 6-12 s one
fault: SIGKILL of a worker and its pool (another is started), SIGKILL of one pool process,
SIGSTOP of a worker for longer than its lease (then SIGCONT), SIGKILL of Redis (started again on
its AOF), a restart of the API (SIGKILL or SIGTERM). After --minutes the faults and submissions
stop, the clients follow their jobs to the end (at most --drain-seconds), and bench/chaos_checks.py
checks the invariants. Prints a summary table; exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench.* when run as a script
from bench.chaos_checks import Check, Evidence, read_records, run_checks  # noqa: E402
from bench.chaos_clients import Client, Tally  # noqa: E402
from bench.chaos_faults import FAULTS, ChaosStack, Injector  # noqa: E402
from service.contract import TERMINAL  # noqa: E402

# What the workers went through, for the report (not invariants).
WORKER_EVENTS = ("job started", "job finished", "delivery not run", "reclaimed a job with an expired lease",
                 "re-sent a job queued for too long", "stopped: the lease went to another attempt",
                 "Timed out waiting for UP message", "engine loaded")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--minutes", type=float, required=True, help="how long faults are injected")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (one pool process each)")
    parser.add_argument("--clients", type=int, default=3, help="client threads, one tenant each")
    parser.add_argument("--interval", type=float, nargs=2, default=(6.0, 12.0),
                        metavar=("MIN", "MAX"), help="seconds between faults, drawn uniformly")
    parser.add_argument("--drain-seconds", type=float, default=180.0,
                        help="how long the clients may follow their jobs after the faults")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: drawn)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this directory and keep it (logs, store, AOF, faults.json)")
    return parser.parse_args(argv)


def soak(args: argparse.Namespace, tmp: Path) -> tuple[list[str], list[Check]]:
    """Run the stack, the clients and the faults; returns the report lines and the checks."""
    rng = random.Random(args.seed)
    keys = {f"chaos-{i}-{secrets.token_hex(6)}": f"tenant{i}" for i in range(args.clients)}
    began = time.monotonic()
    stack = ChaosStack(tmp, args.workers, keys)
    try:
        startup = time.monotonic() - began
        tally = Tally()
        stop_submitting, stop_clients, stop_faults = (threading.Event() for _ in range(3))
        clients = [Client(stack.url, key, tenant, rng.randrange(2**32), tally, stop_submitting,
                          stop_clients) for key, tenant in keys.items()]
        injector = Injector(stack, rng, tuple(args.interval), stop_faults)
        for thread in (*clients, injector):
            thread.start()
        time.sleep(args.minutes * 60)
        stop_faults.set()
        stop_submitting.set()
        injector.join()  # a fault in progress ends with its recovery (restart, SIGCONT)
        (tmp / "faults.json").write_text(json.dumps([asdict(f) for f in injector.faults], indent=1))
        stack.top_up_workers(wait=False)
        drain_began = time.monotonic()
        while not all(c.idle for c in clients) and time.monotonic() - drain_began < args.drain_seconds:
            time.sleep(1)
        drain = time.monotonic() - drain_began
        stop_clients.set()
        for client in clients:
            client.join(30)
        records = read_records(stack.redis.client())
        finish_lines = Counter(e.get("job_id") for e in stack.events("worker", "job finished"))
        evidence = Evidence(tally, records, stack.redis.client(), stack.url,
                            {t: k for k, t in keys.items()}, finish_lines, injector.touched(),
                            stack.data / "store", int(stack.env.get("NST_MAX_ATTEMPTS", "3")))
        checks = run_checks(evidence)
        seen = {text: len(stack.log_lines("worker", text)) for text in WORKER_EVENTS}
    finally:
        stack.stop()
    header = (f"chaos soak, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: {args.minutes:g} min of "
              f"faults, seed {args.seed}, {args.workers} workers, {args.clients} clients; stack "
              f"start {startup:.1f} s, drain {drain:.1f} s")
    events = ["| worker log lines | count |", "|---|---:|", *(f"| {t} | {n} |" for t, n in seen.items())]
    return [header, "", *summary(tally, records, injector.counts()), "", *events, ""], checks


def summary(tally: Tally, records: dict, faults: Counter) -> list[str]:
    """The jobs and faults tables."""
    kept = [records[j] for j in tally.accepted if j in records and j not in tally.deleted]
    ends = Counter(job.status.value for job in kept)
    codes = Counter(job.error_code for job in kept if job.status == "failed")
    refused = ", ".join(f"{code}: {n}" for code, n in sorted(tally.refusals.items())) or "none"
    rows = [("submitted", tally.submitted), ("accepted (202, or 200 replay)", len(tally.accepted)),
            ("abandoned after 30 s of refusals", tally.abandoned), ("POSTs refused", refused),
            ("POSTs failed (5xx or no answer)", tally.failed_posts),
            *((status, ends[status]) for status in sorted(TERMINAL)),
            ("failed, by code", dict(codes) or "none"), ("canceled by a client call", len(tally.canceled)),
            ("deleted", len(tally.deleted)), ("unexpected answers", dict(tally.errors) or "none")]
    lines = ["| jobs | count |", "|---|---:|", *(f"| {k} | {v} |" for k, v in rows), "",
             "| fault | injected |", "|---|---:|"]
    lines += [f"| {kind} | {faults[kind]} |" for kind in FAULTS]
    return lines


def main(argv: list[str] | None = None) -> int:
    """Soak, print the report, exit 1 on any violation."""
    args = parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(10**6)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        lines, checks = soak(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="nst-chaos-") as tmp:
            lines, checks = soak(args, Path(tmp))
    lines += ["| invariant | result | detail |", "|---|---|---|"]
    lines += [f"| {c.name} | {'ok' if c.ok else 'VIOLATED'} | {c.detail} |" for c in checks]
    print("\n".join(lines), flush=True)
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
