"""FastAPI dependencies: settings, the stores, the Celery app, and the caller's tenant."""

from __future__ import annotations

import hmac
from typing import Annotated

from celery import Celery
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from service import connections
from service.error_codes import ErrorCode
from service.jobstore import JobStore
from service.results import ResultStore
from service.settings import Settings, get_settings

OPEN_TENANT = "public"  # the tenant of every caller when no API keys are configured

_bearer = HTTPBearer(auto_error=False, description="An API key from NST_API_KEYS.")


def get_store() -> JobStore:
    """The job store."""
    return connections.job_store()


def get_results() -> ResultStore:
    """The result store."""
    return connections.result_store()


def get_celery() -> Celery:
    """The Celery app, used only to publish (imported lazily: workers own the tasks)."""
    from worker.celery_app import app

    return app


def get_tenant(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The caller's tenant from `Authorization: Bearer <key>`; everyone is public in open mode."""
    if settings.open_mode:
        return OPEN_TENANT
    keys = settings.tenant_by_key()  # empty without open mode: every call is refused
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "send Authorization: Bearer <api key>",
                       headers={"WWW-Authenticate": "Bearer"})
    given = credentials.credentials.encode()
    tenant = None
    for key, owner in keys.items():  # compare with every key, in constant time each
        if hmac.compare_digest(key.encode(), given):
            tenant = owner
    if tenant is None:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "unknown API key",
                       headers={"WWW-Authenticate": "Bearer"})
    return tenant


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[JobStore, Depends(get_store)]
ResultsDep = Annotated[ResultStore, Depends(get_results)]
CeleryDep = Annotated[Celery, Depends(get_celery)]
TenantDep = Annotated[str, Depends(get_tenant)]
