"""DELETE /v1/jobs/{id}: the job, its uploads, results and previews, for privacy."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import ResultsDep, StoreDep, TenantDep
from api.errors import error_docs
from api.routes.jobs import JobId, owned_job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

FOLDERS = ("uploads", "results", "previews")  # every place service.results keeps a job's files


@router.delete("/{job_id}", status_code=204, response_class=Response,
               summary="Delete a job and every file of it",
               responses={204: {"description": "Deleted; GET now answers 404."},
                          **error_docs(401, 404, 422, 503)})
def delete_job(job_id: JobId, store: StoreDep, results: ResultsDep, tenant: TenantDep) -> Response:
    """Cancel the job if it runs, then remove its record and files; GET answers 404 after.

    A running attempt finds the record gone at its next check (every iteration): it stops, its
    finish fails the ownership check, and it deletes what it stored itself.
    """
    owned_job(store, tenant, job_id)
    store.cancel(job_id)
    store.delete(job_id)
    for folder in FOLDERS:
        results.delete_prefix(f"{folder}/{job_id}")
    return Response(status_code=204)
