"""``GET /v1/jobs/{job_id}``: status of an asynchronous batch, and its results once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from service.deps import InfoDep, JobsCaller, JobsDep, SuggesterDep
from service.jobs import ACTIVE
from service.models import Job
from service.schemas import JobStatus, ResultsState, SuggestionResponse, error_responses

router = APIRouter(prefix="/v1", tags=["jobs"])


def _results_state(row: Job, results: list[dict[str, Any]] | None) -> ResultsState:
    if results is not None:
        return "available"
    if row.status in ACTIVE:
        return "pending"
    if row.results_fetched_at is not None:
        return "delivered"
    if row.results_expired_at is not None:
        return "expired"
    return "none"


@router.get(
    "/jobs/{job_id}",
    response_model=JobStatus,
    responses=error_responses(401, 403, 404, 422),
    summary="Status of a batch job; the first read after success returns and deletes the results",
)
def get_job(
    job_id: Annotated[str, Path(min_length=1, max_length=100)],
    principal: JobsCaller,
    info: InfoDep,
    jobs: JobsDep,
    suggester: SuggesterDep,
) -> JobStatus:
    """Poll until ``status`` is ``succeeded`` or ``failed``; keep the results of that read."""
    row, results = jobs.read(principal, job_id)
    info.n_notes = row.n_notes
    status = JobStatus(
        job_id=job_id,
        status=row.status,  # type: ignore[arg-type]
        n_notes=row.n_notes,
        n_done=row.n_done,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        results_state=_results_state(row, results),
        results=[SuggestionResponse.model_validate(r) for r in results] if results is not None else None,
        model_version=row.model_version,
        code_set_versions=dict(suggester.code_set_versions),
        request_id=info.request_id,
    )
    return status
