"""The queue contract between the API and the workers: one task name, the payload is a job id.

Everything else a worker needs is in the job record; Celery's result backend only mirrors how
each delivery ended (worker/task_states.py).
"""

from __future__ import annotations

from celery import Celery

TASK_NAME = "nst.run_job"


def enqueue(app: Celery, queue: str, job_id: str) -> None:
    """Publish one run of the job to the workers' queue."""
    app.send_task(TASK_NAME, args=[job_id], queue=queue)
