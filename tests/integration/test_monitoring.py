"""What operators watch, on a real API and worker after a job succeeded, one failed and one was
canceled mid-run: the Celery task states (Flower's and the result backend's), and the /metrics
scrape, linted by promtool and listed in docs/API.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cli.stack import wait_until
from service.results import LocalStore, upload_key
from tests.support.flower import TaskWatch
from tests.support.stack import CONTENT, ROOT, STYLE, TINY, Stack, long_params
from worker.task_states import JobFailed


@dataclass
class Watched:
    stack: Stack
    tasks: TaskWatch
    jobs: dict[str, dict]  # the final job view by how it ended


@pytest.fixture(scope="module")
def watched(stack_factory) -> Iterator[Watched]:
    stack: Stack = stack_factory("monitor").start_api()
    tasks = TaskWatch(stack.redis_url).start()  # before the worker: it sees every event
    stack.start_worker()
    with stack.client() as alice:
        running = alice.submit(CONTENT, [STYLE], long_params())
        wait_until(lambda: (p := alice.get(running.id).progress) and p.step, 60)
        # Queued behind it (one worker), with an upload that no longer decodes: invalid_input.
        bad = alice.submit(CONTENT, [STYLE], TINY)
        LocalStore(stack.tmp / "data" / "store").put(upload_key(bad.id, "content"), b"junk")
        good = alice.submit(CONTENT, [STYLE], TINY)
        alice.cancel(running.id)
        jobs = {view.status: view for view in
                (alice.wait(j.id, poll=0.1, timeout=60) for j in (running, bad, good))}
    assert set(jobs) == {"canceled", "failed", "succeeded"}, jobs
    assert jobs["failed"].error.code == "invalid_input"
    yield Watched(stack, tasks, jobs)
    tasks.stop()


@pytest.mark.parametrize(("status", "state"), [("succeeded", "SUCCESS"), ("failed", "FAILURE"),
                                               ("canceled", "REVOKED")])
def test_a_task_state_mirrors_how_its_job_ended(watched: Watched, status: str, state: str
                                                ) -> None:
    job = watched.jobs[status]
    task = watched.tasks.task_of(job.id)  # as Flower shows it
    assert task.state == state
    result = watched.tasks.result(task.uuid)  # AsyncResult, Flower's /api/task/result
    assert result.state == state
    if status == "failed":
        assert isinstance(result.result, JobFailed)
        assert (result.result.code, result.result.message) == (job.error.code,
                                                               job.error.message)


def test_an_expected_failure_is_logged_on_one_line_without_a_traceback(watched: Watched
                                                                      ) -> None:
    task = watched.tasks.task_of(watched.jobs["failed"].id)
    (line,) = [e for e in watched.stack.worker_events("raised expected", exact=False)
               if task.uuid in e["msg"]]
    assert line["level"] == "info" and "JobFailed('invalid_input'" in line["msg"]
    assert "Traceback" not in str(line)
    assert not watched.stack.worker_lines("raised unexpected")


def scrape(stack: Stack) -> str:
    response = httpx.get(f"{stack.url}/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


def test_the_scrape_passes_promtool_and_counts_the_jobs(watched: Watched) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (.ci/run does)"
    text = scrape(watched.stack)
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    for status in ("succeeded", "failed", "canceled"):
        assert samples["nst_jobs_finished_total", (("status", status),)] == 1
    assert samples["nst_job_failures_total", (("code", "invalid_input"),)] == 1
    assert samples["nst_jobs", (("status", "running"),)] == 0
    assert samples["nst_workers_online", ()] == 1 and samples["nst_worker_slots", ()] == 1
    for outcome in ("succeeded", "failed", "canceled"):
        labels = (("outcome", outcome), ("preset", "custom"))
        assert samples["nst_job_run_seconds_count", labels] == 1
    assert samples["process_resident_memory_bytes", ()] > 0
    assert any(name == "python_info" for name, _ in samples)


def documented() -> dict[str, tuple[str, set[str]]]:
    """docs/API.md's metrics table: name -> (type, label names)."""
    docs = (ROOT / "docs" / "API.md").read_text()
    section = docs.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(nst_\w+)` \| (\w+) \|([^|]*)\|", section, re.MULTILINE)
    return {name: (kind, label_names(labels)) for name, kind, labels in rows}


def label_names(cell: str) -> set[str]:
    """"`code`: a failed job's ..." or "`method`, `route` (...)": the names before a colon if
    the cell lists values, else every name in backticks."""
    return set(re.findall(r"`(\w+)`:", cell)) or set(re.findall(r"`(\w+)`", cell))


def test_docs_list_exactly_the_metrics_a_scrape_exposes(watched: Watched) -> None:
    exposed = {}
    for family in text_string_to_metric_families(scrape(watched.stack)):
        if family.name.startswith("nst_"):
            name = f"{family.name}_total" if family.type == "counter" else family.name
            labels = {k for s in family.samples for k in s.labels if k != "le"}
            exposed[name] = (family.type, labels)
    assert documented() == exposed


def test_a_stopped_worker_is_offline_at_once(watched: Watched) -> None:
    text_before = scrape(watched.stack)
    assert "nst_workers_online 1.0" in text_before
    worker = next(p for p in watched.stack.procs if "worker" in p.args)
    worker.terminate()
    worker.wait(timeout=30)
    assert "nst_workers_online 0.0" in scrape(watched.stack)
