"""``POST /v1/suggestions`` and ``POST /v1/suggestions/batch``: the one suggest path over HTTP."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from service.deps import (
    BatchCaller,
    IdempotencyDep,
    IdempotencyKey,
    InfoDep,
    JobsDep,
    SettingsDep,
    SuggestCaller,
    SuggesterDep,
)
from service.idempotency import Answer
from service.schemas import (
    BatchRequest,
    BatchResponse,
    JobAccepted,
    SuggestionRequest,
    SuggestionResponse,
    error_responses,
)
from service.suggesting import (
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
    response: Response,
    principal: SuggestCaller,
    info: InfoDep,
    settings: SettingsDep,
    suggester: SuggesterDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> SuggestionResponse:
    """Rank ICD-10-CM, CPT and HCPCS codes for a note, with evidence and the encounter code set."""
    info.note_id, info.text_length, info.n_notes = body.note_id, len(body.text), 1
    check_length(body.text, settings.max_text_chars)

    def produce() -> Answer:
        return Answer(200, suggest_one(suggester, note_from_request(body), options_from(body), info.request_id))

    answer = idempotency.run(
        key_id=principal.key_id,
        idem_key=idempotency_key,
        route="POST /v1/suggestions",
        body=body,
        info=info,
        produce=produce,
        models={200: SuggestionResponse},
    )
    answer.apply(response)
    assert isinstance(answer.body, SuggestionResponse)
    return answer.body


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
    response: Response,
    principal: BatchCaller,
    info: InfoDep,
    settings: SettingsDep,
    suggester: SuggesterDep,
    jobs: JobsDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> BatchResponse | JSONResponse:
    """Up to the synchronous limit (100) the answers come at once; more notes (up to 10,000) are
    queued as a job: ``202`` with ``status_url`` (also in ``Location``) to poll."""
    info.n_notes, info.text_length = len(body.notes), sum(len(n.text) for n in body.notes)
    notes = batch_notes(body, settings.job_max_notes, settings.max_text_chars)
    options = options_from(body)

    def produce() -> Answer:
        if len(notes) <= settings.batch_sync_limit:
            return Answer(200, batch_body(suggester, notes, options, info.request_id))
        accepted = JobAccepted.model_validate(jobs.accept(principal, notes, options, info.request_id))
        return Answer(202, accepted, headers={"Location": accepted.status_url})

    answer = idempotency.run(
        key_id=principal.key_id,
        idem_key=idempotency_key,
        route="POST /v1/suggestions/batch",
        body=body,
        info=info,
        produce=produce,
        models={200: BatchResponse, 202: JobAccepted},
    )
    if isinstance(answer.body, JobAccepted):
        # The 202 answer has its own schema (``responses`` above), not the route's response_model:
        # sent as the validated JobAccepted model, the way FastAPI documents additional responses.
        return JSONResponse(answer.body.model_dump(mode="json"), status_code=202, headers=answer.headers)
    answer.apply(response)
    assert isinstance(answer.body, BatchResponse)
    return answer.body
