"""The Python SDK against real stacks: typed views, the async client, stylize(), and its errors
(a refused connection, a wait that runs out on a job no worker takes)."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image

from api.schemas import JobList, JobView
from cli.stack import free_port
from client import (
    AsyncNstClient,
    NstApiError,
    NstClient,
    NstError,
    NstJobFailed,
    NstTransportError,
    NstWaitTimeout,
    stylize,
)
from service.contract import JobStatus
from tests.support.stack import Stack, png

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run in a thread of its own: the browser suite's Playwright (sync API) keeps an
    event loop running in the main thread for the rest of the session."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


KEY = "key-erin"  # a tenant of its own: its jobs never count against the other suites' caps
# The least engine work the API takes: one Adam iteration at 32 px.
MINI = {"size": 32, "scales": [32], "iterations": [1], "optimizer": "adam", "preview_every": 0}
CONTENT, STYLE = png((48, 32), 0), png((32, 32), 1)
OUT_SIZE = (32, 21)  # 48 x 32 with its long side at 32 px


def image(data: bytes) -> Image.Image:
    """The PNG the bytes hold (fails on anything else)."""
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    return img


@pytest.mark.timeout(120)
def test_every_answer_is_the_apis_model(stack: Stack) -> None:
    with stack.client(KEY) as erin:
        job = erin.submit(CONTENT, STYLE, MINI)
        assert isinstance(job, JobView) and job.status == JobStatus.QUEUED
        assert job.params["size"] == 32 and job.links.result == f"/v1/jobs/{job.id}/result"
        seen: list[JobView] = []
        final = erin.wait(job.id, poll=0.1, on_update=seen.append)
        assert all(isinstance(v, JobView) for v in seen) and seen[-1] == final
        assert final.status is JobStatus.SUCCEEDED and final.progress.percent == 100.0
        assert final.queue_position is None and final.finished_at > final.created_at
        page = erin.list(limit=1)
        assert isinstance(page, JobList) and [j.id for j in page.jobs] == [job.id]
        assert erin.cancel(job.id).status is JobStatus.SUCCEEDED  # ended: unchanged
        assert image(erin.result(job.id)).size == OUT_SIZE
        with pytest.raises(NstApiError) as e:
            erin.get("0" * 32)
        assert (e.value.status, e.value.code, e.value.field) == (404, "job_not_found", "id")


@pytest.mark.timeout(120)
def test_async_client_submits_waits_downloads_and_stylizes(stack: Stack) -> None:
    async def run() -> tuple[JobView, list[JobView], bytes, bytes]:
        async with AsyncNstClient(stack.url, KEY, timeout=30) as erin:
            job = await erin.submit(CONTENT, [STYLE], MINI)
            seen: list[JobView] = []
            final = await erin.wait(job.id, poll=0.1, on_update=seen.append)
            result = await erin.result(job.id)
            return final, seen, result, await erin.stylize(CONTENT, STYLE, poll=0.1, **MINI)

    final, seen, result, stylized = run_async(run())
    assert isinstance(final, JobView) and final.status is JobStatus.SUCCEEDED
    assert seen and seen[-1] == final
    assert image(result).size == OUT_SIZE and image(stylized).size == OUT_SIZE


@pytest.mark.timeout(120)
def test_stylize_is_one_call_returning_the_png(stack: Stack) -> None:
    data = stylize(CONTENT, STYLE, base_url=stack.url, api_key=KEY, poll=0.1, **MINI)
    assert image(data).size == OUT_SIZE
    with stack.client(KEY) as erin:
        newest = erin.list(limit=1).jobs[0]
    assert newest.status is JobStatus.SUCCEEDED and newest.params["scales"] == [32]


def test_connection_refused_is_the_sdks_transport_error() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"

    async def get_async() -> JobView:
        async with AsyncNstClient(nowhere) as c:
            return await c.get("0" * 32)

    for call in (lambda: NstClient(nowhere).get("0" * 32), lambda: run_async(get_async())):
        with pytest.raises(NstTransportError) as e:
            call()
        assert isinstance(e.value, NstError) and not isinstance(e.value, httpx.TransportError)
        assert isinstance(e.value.__cause__, httpx.ConnectError)
        assert str(e.value).startswith(f"cannot reach {nowhere}")


@pytest.mark.timeout(60)
def test_wait_on_a_job_no_worker_takes_raises_the_timeout_error(idle: Stack) -> None:
    with idle.client(KEY) as erin:
        job = erin.submit(CONTENT, STYLE, MINI)
        try:
            for wait in (lambda: erin.wait(job.id, poll=0.2, timeout=1.0),
                         lambda: run_async(_async_wait(idle, job.id))):
                start = time.monotonic()
                with pytest.raises(NstWaitTimeout) as e:
                    wait()
                assert 1.0 <= time.monotonic() - start < 5
                assert isinstance(e.value, NstError) and e.value.view.status is JobStatus.QUEUED
                assert f"job {job.id} is still queued after 1 s" == str(e.value)
            assert erin.get(job.id).status is JobStatus.QUEUED  # waiting gave up, the job did not
        finally:
            erin.cancel(job.id)


async def _async_wait(stack: Stack, job_id: str) -> JobView:
    async with AsyncNstClient(stack.url, KEY) as erin:
        return await erin.wait(job_id, poll=0.2, timeout=1.0)


@pytest.mark.timeout(60)
def test_stylize_cancels_the_job_it_gave_up_on(idle: Stack) -> None:
    with idle.client(KEY) as erin:
        with pytest.raises(NstWaitTimeout) as e:
            erin.stylize(CONTENT, STYLE, poll=0.2, timeout=0.5, **MINI)
        assert erin.get(e.value.view.id).status is JobStatus.CANCELED  # its slot is free again


@pytest.mark.timeout(60)
def test_stylize_raises_job_failed_when_its_job_ends_without_a_result(idle: Stack) -> None:
    with idle.client(KEY) as erin:
        with pytest.raises(NstJobFailed) as e:  # canceled from outside at its first poll
            erin.stylize(CONTENT, STYLE, poll=0.2, on_update=lambda v: erin.cancel(v.id), **MINI)
        assert e.value.view.status is JobStatus.CANCELED and isinstance(e.value, NstError)
        assert str(e.value) == f"job {e.value.view.id} canceled"
