"""Structured logs: one JSON object per line on stderr, with whatever `extra` fields a call passes.

Callers pass ids and figures only: never API keys, request bodies or image bytes.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# Attributes every LogRecord has; anything else came from `extra=` and goes into the line.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "color_message"}


_current_job: ContextVar[str | None] = ContextVar("job_id", default=None)


@contextmanager
def job_logging(job_id: str) -> Iterator[None]:
    """Tag every log line emitted in this context (Celery's, the engine's, ours) with the job id."""
    token = _current_job.set(job_id)
    try:
        yield
    finally:
        _current_job.reset(token)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if isinstance(line.get("data"), dict):
            # Celery's task logs carry their context as `data`, with the traceback even where
            # its policy logs none (an expected exception); `exc` has it when there is one.
            line["data"] = {k: v for k, v in line["data"].items() if k != "traceback"}
        if "job_id" not in line and (job_id := _current_job.get()):
            line["job_id"] = job_id
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
