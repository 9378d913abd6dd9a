"""Celery side of the job service: light modules (settings, queue, jobs, storage) and tasks.py."""
