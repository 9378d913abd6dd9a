"""Queueing and worker behaviour with real processes: waiting for a worker, S3 results,
queue-depth backpressure, a worker killed mid-run, two workers sharing a queue, Redis down."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Iterator

import boto3
import httpx
import psutil
import pytest
import redis
from PIL import Image

from api.schemas import JobView
from cli.stack import free_port, stop_all, wait_until
from client import NstApiError
from nst_core.params import StyleParams
from service.jobstore import JobStore, new_job_id
from service.results import LocalStore, upload_key
from tests.support.stack import CONTENT, STYLE, TINY, Stack, long_params

S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "AWS_DEFAULT_REGION": "us-east-1"}


def wait_status(client, job_id: str, statuses: set[str], timeout: float = 180) -> JobView:
    """Poll until the job is in one of `statuses`."""
    deadline = time.monotonic() + timeout
    view = client.get(job_id)
    while view.status not in statuses and time.monotonic() < deadline:
        time.sleep(0.1)
        view = client.get(job_id)
    assert view.status in statuses, view
    return view


def wait_mid_run(client, job_id: str, timeout: float = 180) -> JobView:
    """Poll until the job runs and has made at least one step (so a kill lands mid-run)."""
    deadline = time.monotonic() + timeout
    view = wait_status(client, job_id, {"running"}, timeout)
    while not (view.progress and view.progress.step > 0) and time.monotonic() < deadline:
        time.sleep(0.05)
        view = client.get(job_id)
    assert view.progress and view.progress.step > 0, view
    return view


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's standalone S3-compatible server on a free loopback port, with a bucket."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(url, timeout=1).status_code < 500, 30, proc)
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="nst-results")
    yield url
    stop_all([proc])


@pytest.fixture(scope="module")
def s3_stack(stack_factory, s3_endpoint: str) -> Stack:
    """An API storing to S3, a queue of at most 2 jobs, and (at first) no worker."""
    return stack_factory("s3", NST_STORAGE="s3", NST_S3_BUCKET="nst-results",
                         NST_S3_ENDPOINT_URL=s3_endpoint, NST_S3_PREFIX="it",
                         NST_MAX_QUEUE_DEPTH="2", **S3_ENV).start_api()


def test_jobs_wait_for_a_worker_and_results_live_in_s3(s3_stack: Stack, s3_endpoint: str
                                                       ) -> None:
    with s3_stack.client() as alice:
        jobs = [alice.submit(CONTENT, [STYLE], TINY) for _ in range(2)]
        with pytest.raises(NstApiError) as e:  # the queue holds 2
            alice.submit(CONTENT, [STYLE], TINY)
        assert e.value.status == 503 and e.value.code == "queue_full"
        full = alice.http.post("/v1/jobs", files=[("content", ("c", CONTENT)),
                                                  ("style", ("s", STYLE))])
        assert int(full.headers["retry-after"]) > 0

        time.sleep(2)
        assert {alice.get(j.id).status for j in jobs} == {"queued"}  # no worker yet

        s3_stack.start_worker()
        for job in jobs:
            view = wait_status(alice, job.id, {"succeeded", "failed", "canceled"})
            assert view.status == "succeeded" and view.attempts == 1
            img = Image.open(io.BytesIO(alice.result(job.id)))
            assert max(img.size) == 64

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="nst-results")["Contents"]}
    for job in jobs:
        assert [k for k in keys if k.startswith(f"it/results/{job.id}/")]  # one per attempt
        assert f"it/uploads/{job.id}/content.png" in keys
    local = s3_stack.tmp / "data" / "store"
    assert not local.exists()  # nothing went to the local directory


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a worker and its pool children at once, as a crashed host would."""
    parent = psutil.Process(proc.pid)
    for p in [*parent.children(recursive=True), parent]:
        p.kill()
    proc.wait()


def test_a_job_of_a_killed_worker_is_reclaimed_and_completed(s3_stack: Stack) -> None:
    worker = s3_stack.start_worker()
    with s3_stack.client() as alice:
        job = alice.submit(CONTENT, [STYLE], long_params(40))
        wait_mid_run(alice, job.id)
        # Every worker of the stack dies; the message stays unacked until the visibility timeout,
        # so only the job lease (4 s here) and the reaper of a fresh worker can bring it back.
        for proc in s3_stack.procs:
            if proc.args[3:4] == ["worker"] and proc.poll() is None:
                _kill_tree(proc)
        assert worker.poll() is not None
        s3_stack.start_worker()
        final = wait_status(alice, job.id, {"succeeded", "failed", "canceled"})
        assert final.status == "succeeded", final
        assert final.attempts == 2
        assert s3_stack.worker_lines('"outcome": "requeued"')



def test_a_job_whose_pool_process_died_is_retried(s3_stack: Stack) -> None:
    worker = next(p for p in s3_stack.procs if p.args[3:4] == ["worker"] and p.poll() is None)
    with s3_stack.client() as alice:
        job = alice.submit(CONTENT, [STYLE], long_params(40))
        wait_mid_run(alice, job.id)
        # Only the child running the job dies; Celery puts the message back at once, the
        # redelivery finds the job's lease still held and does nothing, the lease expires and
        # the reaper queues the job again.
        for child in psutil.Process(worker.pid).children(recursive=True):
            child.kill()
        final = wait_status(alice, job.id, {"succeeded", "failed", "canceled"})
        assert final.status == "succeeded", final
        assert final.attempts == 2
        assert worker.poll() is None  # the worker itself lived on


@pytest.fixture(scope="module")
def pair(stack_factory) -> Stack:
    """Two workers on one queue; a queued job's message is re-sent after 2 s unclaimed."""
    stack = stack_factory("pair", NST_REQUEUE_AFTER_SECONDS="2").start_api()
    stack.start_worker()
    stack.start_worker()
    return stack


def test_two_workers_drain_a_queue_each_job_once(pair: Stack) -> None:
    with pair.client() as alice:
        jobs = [alice.submit(CONTENT, [STYLE], TINY) for _ in range(4)]
        for job in jobs:
            view = wait_status(alice, job.id, {"succeeded", "failed", "canceled"})
            assert view.status == "succeeded" and view.attempts == 1
    for job in jobs:
        assert len(pair.worker_lines(f'"msg": "job started", "job_id": "{job.id}"')) == 1
    busy = [log for log in pair.logs if log.name.startswith("worker")
            and '"job started"' in log.read_text()]
    assert len(busy) == 2, "both workers should have taken jobs"


def test_redis_down_is_503_not_500(stack_factory) -> None:
    down = stack_factory("down", NST_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").start_api()
    assert httpx.get(f"{down.url}/healthz").status_code == 200
    ready = httpx.get(f"{down.url}/readyz")
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "unavailable"
    with down.client() as alice:
        for call in (lambda: alice.get("0" * 32), lambda: alice.list(),
                     lambda: alice.submit(CONTENT, [STYLE], TINY)):
            with pytest.raises(NstApiError) as e:
                call()
            assert e.value.status == 503 and e.value.code == "unavailable"
    metrics = httpx.get(f"{down.url}/metrics")
    assert metrics.status_code == 200 and "nst_store_up 0.0" in metrics.text


def test_a_job_whose_message_was_lost_is_sent_again(pair: Stack) -> None:
    # Record a job the way the API does, but never publish its message.
    job_id = new_job_id()
    store = LocalStore(pair.tmp / "data" / "store")
    inputs = {"content": upload_key(job_id, "content"), "styles": [upload_key(job_id, "style-0")]}
    store.put(inputs["content"], CONTENT)
    store.put(inputs["styles"][0], STYLE)
    jobs = JobStore(redis.Redis.from_url(pair.redis_url, decode_responses=True))
    params = StyleParams.model_validate(TINY).model_dump(mode="json")
    jobs.create(job_id, "alice", params, inputs, ttl=600, max_active=10, max_queue=100)
    with pair.client() as alice:
        view = wait_status(alice, job_id, {"succeeded", "failed", "canceled"})
    assert view.status == "succeeded" and view.attempts == 1
    assert pair.worker_lines(f'"msg": "re-sent a job queued for too long", "job_id": "{job_id}"')


def test_a_job_over_its_time_limit_fails_with_timeout_and_the_worker_goes_on(stack_factory
                                                                             ) -> None:
    timed = stack_factory("timed", NST_TASK_SOFT_TIME_LIMIT="8", NST_TASK_HARD_TIME_LIMIT="15",
                          NST_VISIBILITY_TIMEOUT="60").start_api()
    timed.start_worker()
    with timed.client() as alice:
        slow = alice.submit(CONTENT, [STYLE], long_params(2000))
        after = alice.submit(CONTENT, [STYLE], {**TINY, "size": 32, "scales": [32],
                                                "iterations": [1]})
        view = wait_status(alice, slow.id, {"succeeded", "failed", "canceled"}, timeout=60)
        assert view.status == "failed" and view.error.code == "timeout", view
        assert view.attempts == 1
        assert wait_status(alice, after.id, {"succeeded", "failed"}).status == "succeeded"
