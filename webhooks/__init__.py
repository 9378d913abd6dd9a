"""Webhook delivery: a light Celery app on its own queue (`nst webhooks`), never the GPU workers."""
