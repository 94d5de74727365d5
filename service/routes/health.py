"""Health probes and ``GET /v1/model``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service.deps import InfoDep, ReadCaller, SuggesterDep
from service.schemas import LiveResponse, ModelInfoResponse, ReadyResponse, error_responses

router = APIRouter(tags=["health"])


@router.get("/health/live", response_model=LiveResponse, summary="The process is up")
def live() -> LiveResponse:
    """Answers as long as the process serves requests (no key needed)."""
    return LiveResponse()


@router.get(
    "/health/ready",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse, "description": "Model or database not ready."}},
    summary="The model is loaded and the database answers",
)
def ready(request: Request, response: Response) -> ReadyResponse:
    """503 until the model is loaded and while the database does not answer (no key needed)."""
    state = request.app.state
    suggester = getattr(state, "suggester", None)
    db = getattr(state, "db", None)
    model_ok = suggester is not None
    db_ok = db is not None and db.ping()
    body = ReadyResponse(
        status="ready" if model_ok and db_ok else "not_ready",
        model=model_ok,
        database=db_ok,
        model_version=suggester.model_version if suggester is not None else None,
        code_set_versions=dict(suggester.code_set_versions) if suggester is not None else {},
    )
    response.status_code = 200 if model_ok and db_ok else 503
    return body


@router.get(
    "/v1/model",
    response_model=ModelInfoResponse,
    responses=error_responses(401, 403),
    tags=["model"],
    summary="The loaded model: version, training data, metrics, code-set versions",
)
def model_info(
    _: ReadCaller,
    info: InfoDep,
    suggester: SuggesterDep,
) -> ModelInfoResponse:
    """What the loaded model is and how well it did on held-out data."""
    details = dict(suggester.model_info())
    details.pop("code_set_versions", None)
    details.setdefault("name", suggester.model_version)
    details.setdefault("version", "")
    return ModelInfoResponse(
        **details,
        model_version=suggester.model_version,
        code_set_versions=dict(suggester.code_set_versions),
        request_id=info.request_id,
    )
