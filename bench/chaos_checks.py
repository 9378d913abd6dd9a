"""The chaos soak's invariants, checked once the faults stopped and the jobs drained.

Each check compares what the clients were told (the Tally) with the job store, the workers' logs,
the result store's files and the API's /metrics, and returns a Check; `CHECKS` lists them all.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from bench.chaos_clients import Tally
from service.contract import TERMINAL, JobStatus
from service.jobstore import DEFAULT_PREFIX, Job, JobStore

# Metric samples that count jobs by their `status` label: nst_jobs (gauges now, totals for terminal
# statuses) on main; a counter of finished jobs is checked the same way once the API exports it.
ENDED_BY_STATUS = ("nst_jobs", "nst_jobs_finished_total")


@dataclass
class Check:
    """One invariant's verdict."""

    name: str
    ok: bool
    detail: str


@dataclass
class Evidence:
    """Everything the checks read, gathered once."""

    tally: Tally
    records: dict[str, Job]  # every job record in the store, by id
    redis: redis.Redis
    api: str  # the API's URL
    keys: dict[str, str]  # tenant -> API key
    finish_lines: Counter  # job id -> `job finished` lines in all worker logs
    touched: set[str]  # jobs running when some fault struck
    store_root: Path  # the local result store
    max_attempts: int


def read_records(r: redis.Redis) -> dict[str, Job]:
    """Every job record in the store, by id (event streams left out)."""
    store, out = JobStore(r), {}
    for key in r.scan_iter(match=f"{DEFAULT_PREFIX}job:*", count=500):
        if key.count(":") == 2 and (job := store.get(key.rsplit(":", 1)[1])) is not None:
            out[job.id] = job
    return out


def _ids(ids: list[str] | set[str], limit: int = 5) -> str:
    ids = sorted(ids)
    return ", ".join(i[:8] for i in ids[:limit]) + (f" (+{len(ids) - limit})" if len(ids) > limit else "")


def accepted_jobs_ended(e: Evidence) -> Check:
    """Every accepted job is terminal, or deleted by its client (and gone)."""
    lost = [j for j in e.tally.accepted if j not in e.records and j not in e.tally.deleted]
    unfinished = [j for j in e.tally.accepted if j in e.records and not e.records[j].finished]
    back = [j for j in e.tally.deleted if j in e.records]  # a deleted job that came back
    ok = not (lost or unfinished or back)
    return Check("every accepted job is terminal or deleted", ok,
                 f"{len(e.tally.accepted)} accepted, {len(e.tally.deleted)} deleted; lost "
                 f"{len(lost)} [{_ids(lost)}], unfinished {len(unfinished)} [{_ids(unfinished)}], "
                 f"deleted but back {len(back)} [{_ids(back)}]")


def nothing_left_running(e: Evidence) -> Check:
    """No record (accepted or not) is queued or running, nor in the queued/running indexes."""
    open_ = [j for j, job in e.records.items() if not job.finished]
    queued = e.redis.zcard(f"{DEFAULT_PREFIX}queued")
    running = e.redis.zcard(f"{DEFAULT_PREFIX}running")
    return Check("no job left queued or running", not open_ and not queued and not running,
                 f"{len(e.records)} records; unfinished {len(open_)} [{_ids(open_)}]; "
                 f"queued index {queued}, running index {running}")


def finished_once(e: Evidence) -> Check:
    """Each job reached its end once: one terminal event in its stream, at most one `job
    finished` line in all worker logs, no more attempts than allowed."""
    twice_logged = [j for j, n in e.finish_lines.items() if n > 1]
    events = {}
    for job_id, job in e.records.items():
        if job.finished:
            stream = e.redis.xrange(f"{DEFAULT_PREFIX}job:{job_id}:events")
            events[job_id] = sum(1 for _, f in stream
                                 if f["kind"] == "status" and JobStatus(f["status"]).is_terminal)
    not_once = [j for j, n in events.items() if n != 1]
    over = [j for j, job in e.records.items() if job.attempts > e.max_attempts]
    attempts = Counter(job.attempts for job in e.records.values())
    return Check("no job finished twice", not (twice_logged or not_once or over),
                 f"terminal events != 1: {len(not_once)} [{_ids(not_once)}]; `job finished` "
                 f"logged twice: {len(twice_logged)} [{_ids(twice_logged)}]; over "
                 f"{e.max_attempts} attempts: {len(over)}; attempts per job {dict(sorted(attempts.items()))}")


def results_match_etags(e: Evidence) -> Check:
    """Every succeeded job's result, as served, hashes to the ETag its record holds."""
    bad, served = [], 0
    for job_id, job in e.records.items():
        if job.status != JobStatus.SUCCEEDED:
            continue
        r = httpx.get(f"{e.api}/v1/jobs/{job_id}/result", timeout=30,
                      headers={"Authorization": f"Bearer {e.keys[job.tenant]}"})
        digest = hashlib.sha256(r.content).hexdigest()[:32]
        served += 1
        if (r.status_code != 200 or digest != job.result_etag
                or r.headers.get("etag") != f'"{job.result_etag}-png"'):
            bad.append(job_id)
    return Check("served result bytes hash to the recorded ETag", not bad,
                 f"{served} results fetched; mismatched or missing {len(bad)} [{_ids(bad)}]")


def unowned_files(e: Evidence) -> Check:
    """No upload, result or preview file is left that no job owns, except where a fault explains
    it (they are removed by the TTL sweep): the uploads of a POST that got no 202 (at most one per
    failed POST), and the files of an attempt a fault cut short (a job running at a fault)."""
    owned = {k for job in e.records.values()
             for k in (job.inputs.get("content"), *job.inputs.get("styles", ()),
                       job.result_key, job.preview_key) if k}
    files = [p.relative_to(e.store_root).as_posix() for p in e.store_root.rglob("*") if p.is_file()]
    loose = [f for f in files if f.split("/")[0] != "system" and f not in owned]
    causes: Counter = Counter()
    unexplained: list[str] = []
    failed_post_folders: set[str] = set()
    for f in loose:
        folder, job_id = f.split("/")[:2]
        if job_id in e.touched and (job_id in e.records or job_id in e.tally.deleted):
            causes["an attempt cut short by a fault"] += 1
        elif folder == "uploads" and job_id not in e.records and job_id not in e.tally.accepted:
            failed_post_folders.add(job_id)
            causes["uploads of a POST without a 202"] += 1
        else:
            unexplained.append(f)
    if len(failed_post_folders) > e.tally.failed_posts:
        unexplained += sorted(failed_post_folders)
    return Check("no file left that no job owns (beyond what the TTL sweep removes)",
                 not unexplained,
                 f"{len(files)} files, {len(loose)} unowned: {dict(causes)} ({len(failed_post_folders)}"
                 f" upload folders for {e.tally.failed_posts} failed POSTs); unexplained "
                 f"{len(unexplained)} [{', '.join(_whose(e, f) for f in unexplained[:4])}]")


def _whose(e: Evidence, path: str) -> str:
    job_id = path.split("/")[1]
    job = e.records.get(job_id)
    owner = (f"{job.status.value}, attempts {job.attempts}" if job else
             "deleted" if job_id in e.tally.deleted else "no record")
    return f"{path} ({owner})"


def metrics_add_up(e: Evidence) -> Check:
    """/metrics equals the store's counters, and they equal the records by status plus the
    deleted jobs (exactly for those deleted after their end; a job deleted in flight may have
    ended, or been canceled by its DELETE, or not)."""
    text = httpx.get(f"{e.api}/metrics", timeout=30).text
    samples = {(s.name, s.labels.get("status")): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}
    store = JobStore(e.redis).status_counts()
    by_status = Counter(job.status.value for job in e.records.values())
    deleted = Counter(e.tally.deleted.values())
    in_flight = sum(n for s, n in deleted.items() if s not in TERMINAL)
    wrong, checked = [], []
    for name in ENDED_BY_STATUS:
        for status in store:
            value = samples.get((name, status))
            if value is None:
                continue
            checked.append(f"{name}{{{status}}}={value:g}")
            low = by_status[status] + (deleted[status] if status in TERMINAL else 0)
            high = low + (in_flight if status in TERMINAL else 0)
            if name == "nst_jobs" and value != store[status]:
                wrong.append(f"{name}{{{status}}} {value:g} != store counter {store[status]}")
            if not low <= value <= high:
                wrong.append(f"{name}{{{status}}} {value:g} not in [{low}, {high}]")
    return Check("metrics add up (store records + deleted jobs vs /metrics)", not wrong and bool(checked),
                 f"{', '.join(checked)}; deleted in flight {in_flight}; "
                 + ("; ".join(wrong) if wrong else "all within bounds"))


CHECKS: list[Callable[[Evidence], Check]] = [
    accepted_jobs_ended, nothing_left_running, finished_once, results_match_etags, unowned_files,
    metrics_add_up,
]


def run_checks(e: Evidence) -> list[Check]:
    """Every check; one that crashes is a failed check, not a crashed soak."""
    out = []
    for check in CHECKS:
        try:
            out.append(check(e))
        except Exception as exc:  # noqa: BLE001 - reported as the check's verdict
            out.append(Check(check.__name__, False, f"check crashed: {exc!r}"))
    return out
