"""In-process API tests: FastAPI's TestClient, the dependencies pointed at the real Redis under
a prefix of their own and a temp result store; publishing is recorded instead of sent."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient

from api import deps
from api.main import create_app
from service.jobstore import JobStore
from service.results import LocalStore
from service.settings import Settings, get_settings

KEYS = "key-alice:alice,key-bob:bob"


@dataclass
class Published:
    """Stands in for the Celery app: records what the API would send to the workers."""

    sent: list[tuple[str, list, str]] = field(default_factory=list)

    def send_task(self, name: str, args: list, queue: str) -> None:
        self.sent.append((name, args, queue))


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_keys": KEYS, "max_active_jobs_per_tenant": 3,
                                       "max_upload_bytes": 256 * 1024})


@pytest.fixture
def http(api_settings: Settings, store: JobStore, results: LocalStore,
         published: Published) -> Iterator[TestClient]:
    """A TestClient as alice, on this test's job store and result store."""
    app = create_app(api_settings)
    app.dependency_overrides.update({
        get_settings: lambda: api_settings,
        deps.get_store: lambda: store,
        deps.get_results: lambda: results,
        deps.get_celery: lambda: published,
    })
    with TestClient(app, headers={"Authorization": "Bearer key-alice"}) as client:
        yield client
