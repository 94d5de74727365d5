"""``GET /v1/jobs/{job_id}``: status of an asynchronous batch, and its results once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from service.audit import RequestInfo
from service.deps import get_info, get_jobs, get_suggester, require
from service.jobs import ACTIVE, JobManager
from service.models import Job
from service.schemas import JobStatus, ResultsState, error_responses
from service.security import Principal
from service.suggesting import SuggesterLike

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
    principal: Annotated[Principal, Depends(require("jobs"))],
    info: Annotated[RequestInfo, Depends(get_info)],
    jobs: Annotated[JobManager, Depends(get_jobs)],
    suggester: Annotated[SuggesterLike, Depends(get_suggester)],
) -> JSONResponse:
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
        results=None,
        model_version=row.model_version,
        code_set_versions=dict(suggester.code_set_versions),
        request_id=info.request_id,
    )
    body = status.model_dump(mode="json")
    # The results are already API documents (made by the same schema); no second validation.
    body["results"] = results
    return JSONResponse(body)
