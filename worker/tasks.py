"""The heavy side: the Celery task that runs one delivery of a job (worker/attempt.py).

The engine (torch, VGG19) loads in each pool process as it starts, so bad weights stop the
worker instead of failing every job it takes. The worker's main process runs the reaper and
the heartbeat that /metrics counts workers by.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import redis
from celery import Task
from celery.signals import celeryd_after_setup, worker_process_init, worker_ready, worker_shutdown

from service import connections
from service.contract import JobStatus
from service.logs import configure_logging, job_logging
from service.queue import TASK_NAME
from service.settings import get_settings
from worker.attempt import Attempt, Engine
from worker.celery_app import app
from worker.heartbeat import Heartbeat
from worker.reaper import Reaper
from worker.task_states import JobFailed, revoked

log = logging.getLogger("nst.worker")

_engine: Engine | None = None
_pool_size = 1  # pool processes of this worker: set in the main process, inherited by the fork


def load_engine(pool_size: int = 1) -> Engine:
    """The engine with VGG19 loaded, once per pool process; torch threads share the cores."""
    global _engine
    if _engine is None:
        import torch

        from nst_core.transfer import Stylizer  # torch: only ever imported in pool processes

        settings = get_settings()
        # Pool processes that each use every core oversubscribe the CPU and slow down several-fold.
        torch.set_num_threads(settings.torch_threads or max(1, (os.cpu_count() or 1) // pool_size))
        engine = Stylizer(weights=settings.weights, device=settings.device)
        engine.warm_up()  # the process's one-time costs, here in setup rather than in its first job
        _engine = engine
        log.info("engine loaded", extra={"torch_threads": torch.get_num_threads(),
                                         "pool_size": pool_size})
    return _engine


def run(job_id: str) -> str:
    """Run one delivery of a job; returns the outcome (for logs and tests)."""
    attempt = Attempt(job_id, connections.job_store(), connections.result_store(), get_settings(),
                      load_engine(_pool_size))
    return attempt.run()


# An attempt's outcomes that ended the job failed (at its finish, or at a claim past the last
# attempt) and canceled; any other outcome ends the delivery normally.
_FAILED = {JobStatus.FAILED, "exhausted"}
_CANCELED = {JobStatus.CANCELED}


# JobFailed is expected: Celery logs it on one line (the worker logged why), acks the message
# (acks_on_failure) and never retries it; the job store has recorded the failure before it.
@app.task(name=TASK_NAME, bind=True, throws=(JobFailed,))
def run_job(self: Task, job_id: str) -> str:
    """The Celery entry point; the payload is the job id only. The task's state mirrors how
    this delivery ended the job (worker/task_states.py)."""
    with job_logging(job_id):
        outcome = run(job_id)
    if outcome in _CANCELED:
        revoked(self, "the job was canceled")
    if outcome in _FAILED:
        job = connections.job_store().get(job_id)  # the error as the store recorded it
        code, message = (job.error_code, job.error_message) if job else (None, "record gone")
        raise JobFailed(code or "", message or "")
    return outcome


# --- worker process lifecycle ---------------------------------------------------------------

_reaper: Reaper | None = None
_heartbeat: Heartbeat | None = None


@celeryd_after_setup.connect
def _record_pool_size(instance: Any = None, **_: Any) -> None:
    # Whoever started the worker (`nst worker`, `celery -A worker.celery_app worker -c N`).
    global _pool_size
    # No -c means Celery's default, one pool process per core: size the threads for that too.
    concurrency = getattr(instance, "concurrency", None) or app.conf.worker_concurrency
    _pool_size = max(1, int(concurrency or os.cpu_count() or 1))
    _check_store_or_exit()


def _check_store_or_exit() -> None:
    # A worker that cannot see the API's uploads would fail every job it takes: it must not start.
    while True:
        try:
            connections.check_shared_store()
            return
        except connections.StoreMismatch as e:
            log.critical("refusing to start: %s", e)
            os._exit(2)
        except redis.RedisError:  # nothing runs without Redis anyway: wait for it
            log.warning("Redis unreachable; checking the result store again in 1 s")
            time.sleep(1)


@worker_process_init.connect
def _start_pool_process(**_: Any) -> None:
    # Clients built in the parent (for the reaper) must not be shared with forked children.
    connections.redis_client.cache_clear()
    connections.job_store.cache_clear()
    connections.result_store.cache_clear()
    configure_logging(get_settings().log_level)
    try:
        load_engine(_pool_size)
    except Exception:
        log.critical("the engine did not load; stopping the worker", exc_info=True)
        os.kill(os.getppid(), signal.SIGTERM)  # the worker stops instead of failing jobs
        os._exit(1)


@worker_ready.connect
def _start_main_threads(sender: Any = None, **_: Any) -> None:
    global _reaper, _heartbeat
    store = connections.job_store()
    _reaper = Reaper(store, connections.result_store(), get_settings(), app)
    _reaper.start()
    _heartbeat = Heartbeat(store.r, store.prefix, sender.hostname, _pool_size)
    _heartbeat.start()


@worker_shutdown.connect
def _stop_main_threads(**_: Any) -> None:
    if _reaper is not None:
        _reaper.stop()
    if _heartbeat is not None:
        _heartbeat.stop()
