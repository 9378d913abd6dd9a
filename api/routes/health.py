"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import StoreDep
from api.errors import error_docs, error_response
from api.metrics import registry
from service.error_codes import ErrorCode

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    """Always ok while the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: Redis is reachable", responses=error_docs(503))
def readyz(store: StoreDep) -> JSONResponse:
    """200 when the job store answers a PING, else 503."""
    try:
        store.r.ping()
    except Exception:
        return error_response(503, ErrorCode.UNAVAILABLE, "Redis is unreachable",
                              headers={"Retry-After": "5"})
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics() -> Response:
    """Job counts and totals, workers, job histograms, HTTP latency (docs/API.md lists them)."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
