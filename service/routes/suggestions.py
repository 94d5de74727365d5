"""``POST /v1/suggestions`` and ``POST /v1/suggestions/batch``: the one suggest path over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from service.audit import RequestInfo
from service.config import Settings
from service.deps import (
    IdempotencyKey,
    get_idempotency,
    get_info,
    get_jobs,
    get_settings,
    get_suggester,
    require,
)
from service.idempotency import Answer, IdempotencyStore
from service.jobs import JobManager
from service.schemas import (
    BatchRequest,
    BatchResponse,
    JobAccepted,
    SuggestionRequest,
    SuggestionResponse,
    error_responses,
)
from service.security import Principal
from service.suggesting import (
    SuggesterLike,
    batch_body,
    batch_notes,
    check_length,
    note_from_request,
    options_from,
    suggest_one,
)

router = APIRouter(prefix="/v1", tags=["suggestions"])


@router.post(
    "/suggestions",
    response_model=SuggestionResponse,
    responses=error_responses(401, 403, 409, 413, 422),
    summary="Suggest codes for one note",
)
def create_suggestions(
    body: SuggestionRequest,
    principal: Annotated[Principal, Depends(require("suggest"))],
    info: Annotated[RequestInfo, Depends(get_info)],
    settings: Annotated[Settings, Depends(get_settings)],
    suggester: Annotated[SuggesterLike, Depends(get_suggester)],
    idempotency: Annotated[IdempotencyStore, Depends(get_idempotency)],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Rank ICD-10-CM, CPT and HCPCS codes for a note, with evidence and the encounter code set."""
    info.note_id, info.text_length, info.n_notes = body.note_id, len(body.text), 1
    check_length(body.text, settings.max_text_chars)

    def produce() -> Answer:
        answer = suggest_one(suggester, note_from_request(body), options_from(body), info.request_id)
        return Answer(200, answer)

    return idempotency.run(
        key_id=principal.key_id,
        idem_key=idempotency_key,
        route="POST /v1/suggestions",
        body=body,
        info=info,
        produce=produce,
    )


@router.post(
    "/suggestions/batch",
    response_model=BatchResponse,
    responses={
        202: {"model": JobAccepted, "description": "Over the synchronous limit: a job was queued."},
        **error_responses(401, 403, 409, 413, 422, 429),
    },
    summary="Suggest codes for several notes (a job when over the synchronous limit)",
)
def create_batch(
    body: BatchRequest,
    principal: Annotated[Principal, Depends(require("batch"))],
    info: Annotated[RequestInfo, Depends(get_info)],
    settings: Annotated[Settings, Depends(get_settings)],
    suggester: Annotated[SuggesterLike, Depends(get_suggester)],
    jobs: Annotated[JobManager, Depends(get_jobs)],
    idempotency: Annotated[IdempotencyStore, Depends(get_idempotency)],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Up to the synchronous limit (100) the answers come at once; more notes (up to 10,000) are
    queued as a job: ``202`` with ``status_url`` (also in ``Location``) to poll."""
    info.n_notes, info.text_length = len(body.notes), sum(len(n.text) for n in body.notes)
    notes = batch_notes(body, settings.job_max_notes, settings.max_text_chars)
    options = options_from(body)

    def produce() -> Answer:
        if len(notes) <= settings.batch_sync_limit:
            return Answer(200, batch_body(suggester, notes, options, info.request_id))
        accepted = jobs.accept(principal, notes, options, info.request_id)
        return Answer(202, accepted, headers={"Location": accepted["status_url"]})

    return idempotency.run(
        key_id=principal.key_id,
        idem_key=idempotency_key,
        route="POST /v1/suggestions/batch",
        body=body,
        info=info,
        produce=produce,
    )
