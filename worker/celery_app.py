"""The Celery application: Redis broker, late acks, one queue, per-task time limits, task states.

`celery -A worker.celery_app worker` loads this; the API imports it only to publish.
"""

from __future__ import annotations

from celery import Celery

from service.settings import Settings, get_settings
from worker.task_states import backend_url

POOL_PROCESS_START_SECONDS = 300.0  # the longest a pool process may take to load the engine


def create_celery_app(settings: Settings) -> Celery:
    """A Celery app configured from the settings (tasks are in worker.tasks, loaded by workers)."""
    app = Celery("nst", broker=settings.broker_url, include=["worker.tasks"])
    app.conf.update(
        # A message is acknowledged only after the task returns, and put back if the child
        # running it dies, so a crash never silently drops a job.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a long job must not hold other jobs hostage
        # A pool process reports up only after loading torch and VGG19 (worker/tasks.py); Celery
        # kills one that takes longer than this (4 s by default) and forks another, which on a
        # busy host can go on for minutes with nothing run (the chaos soak saw 67 in a row).
        worker_proc_alive_timeout=POOL_PROCESS_START_SECONDS,
        # Nor may it after a broker reconnect, when the new channel forgets the message still
        # running: take a message only when a pool process is free (Redis broker only).
        worker_disable_prefetch=True,
        broker_transport_options={
            # Unacked messages come back after this; it must exceed the longest job.
            "visibility_timeout": settings.visibility_timeout,
            "master_name": settings.redis_master_name,  # read by the sentinel:// transport only
        },
        # Redis restarting: workers reconnect by themselves, however long it takes, and a running
        # job goes on (its lease, not the unackable message, keeps it; a redelivery is a no-op).
        broker_connection_retry_on_startup=True,
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_hard_time_limit,
        task_serializer="json",
        accept_content=["json"],
        # The job record is the result; the backend keeps each delivery's state (SUCCESS,
        # FAILURE, REVOKED: worker/task_states.py) for Flower and AsyncResult, as long as the job.
        result_backend=backend_url(settings),
        result_backend_transport_options={"master_name": settings.redis_master_name},
        result_expires=settings.job_ttl_seconds,
        task_default_queue=settings.queue,
        task_create_missing_queues=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,  # our JSON handler writes to stderr itself
        worker_send_task_events=True,  # for flower
        enable_utc=True,
    )
    return app


app = create_celery_app(get_settings())
