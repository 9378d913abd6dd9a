"""The FastAPI application factory; `uvicorn api.main:app` serves it."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute

from api.errors import error_docs, install_error_handlers
from api.metrics import observe_request
from api.openapi import install_openapi
from api.routes import delete, events, health, jobs, presets
from api.web import install_web
from service.logs import configure_logging
from service.settings import Settings, get_settings

log = logging.getLogger("nst.api")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if settings.open_mode:
        log.warning("no NST_API_KEYS: open mode, every caller is tenant 'public'; "
                    "serve on loopback only")
    log.info("api ready", extra={"storage": settings.storage, "queue": settings.queue})
    yield


async def _observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                   ) -> Response:
    """Access log line (no headers or bodies: they hold keys and images) and latency metric."""
    start = time.perf_counter()
    response = await call_next(request)
    seconds = time.perf_counter() - start
    route = getattr(request.scope.get("route"), "path", "unmatched")
    observe_request(request.method, route, response.status_code, seconds)
    log.info("request", extra={"method": request.method, "path": request.url.path,
                               "status": response.status_code, "ms": round(1000 * seconds, 1)})
    return response


def operation_id(route: APIRoute) -> str:
    """The OpenAPI operation id: the handler's name (get_job), not FastAPI's get_job_v1_jobs__id__get."""
    return route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app: routes, the one error shape, metrics and access logs."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="Neural style transfer job service",
        version="1.0.0",
        description="Submit a content photo and style images, poll the job, fetch the result. "
                    "Every error is `{\"error\": {\"code\", \"message\", \"field\"}}`.",
        lifespan=_lifespan,
        generate_unique_id_function=operation_id,
        responses=error_docs(500),  # any route can fail unexpectedly: say what the body is then
        docs_url=None, redoc_url=None,  # served offline by api.web
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.middleware("http")(_observe)
    app.include_router(jobs.router)
    app.include_router(delete.router)
    app.include_router(events.router)
    app.include_router(presets.router)
    app.include_router(health.router)
    install_web(app)
    install_openapi(app, jobs.FORM_MODELS)
    return app


app = create_app()
