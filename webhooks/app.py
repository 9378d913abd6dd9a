"""The webhook Celery app: the delivery task on NST_WEBHOOK_QUEUE and the dispatcher thread.

`nst webhooks` runs it with a thread pool (deliveries wait on the network, not the CPU); it
imports no torch, and the GPU workers never consume its queue.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from service import connections
from service.settings import Settings, get_settings
from webhooks.delivery import deliver
from webhooks.outbox import Event, Outbox

log = logging.getLogger("nst.webhooks")

TASK_NAME = "nst.deliver_webhook"


def create_webhook_app(settings: Settings) -> Celery:
    """A Celery app for deliveries: the message is only a trigger, the outbox is the record."""
    app = Celery("nst-webhooks", broker=settings.broker_url)
    app.conf.update(
        task_default_queue=settings.webhook_queue,
        task_create_missing_queues=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # kombu's sentinel:// transport refuses to connect without it (NST_REDIS_SENTINELS).
        broker_transport_options={"master_name": settings.redis_master_name},
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        enable_utc=True,
    )
    return app


app = create_webhook_app(get_settings())


@app.task(name=TASK_NAME)
def deliver_webhook(member: str) -> str:
    """Try one outbox entry once."""
    return deliver(Event.parse(member), Outbox(connections.job_store()), get_settings())


def lease_seconds(settings: Settings) -> float:
    """How long a sent entry is held: longer than one try can take (connect + reads)."""
    return 3 * settings.webhook_timeout_seconds + 5


class Dispatcher(threading.Thread):
    """Every NST_WEBHOOK_POLL_SECONDS, sends a task for each due outbox entry (leasing it)."""

    def __init__(self, outbox: Outbox, settings: Settings, celery: Celery) -> None:
        super().__init__(name="nst-webhook-dispatcher", daemon=True)
        self.outbox, self.settings, self.celery = outbox, settings, celery
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.settings.webhook_poll_seconds):
            try:
                for event in self.outbox.lease_due(lease_seconds(self.settings)):
                    self.celery.send_task(TASK_NAME, args=[event.member],
                                          queue=self.settings.webhook_queue)
            except Exception:  # Redis down or restarting: leased entries come due again
                log.warning("webhook dispatch failed", exc_info=True)

    def stop(self) -> None:
        """End after the current pass."""
        self._stop_event.set()


_dispatcher: Dispatcher | None = None


@worker_ready.connect
def _start_dispatcher(**_: Any) -> None:
    global _dispatcher
    _dispatcher = Dispatcher(Outbox(connections.job_store()), get_settings(), app)
    _dispatcher.start()


@worker_shutdown.connect
def _stop_dispatcher(**_: Any) -> None:
    if _dispatcher is not None:
        _dispatcher.stop()
