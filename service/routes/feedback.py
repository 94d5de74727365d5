"""``POST /v1/feedback``: a coder's decisions on the codes of a note."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.deps import DatabaseDep, FeedbackCaller, IdempotencyDep, IdempotencyKey, InfoDep, SettingsDep, SuggesterDep
from service.feedback import store_feedback
from service.idempotency import Answer
from service.schemas import FeedbackRequest, FeedbackResponse, error_responses
from service.suggesting import check_length

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post(
    "/feedback",
    response_model=FeedbackResponse,
    status_code=201,
    responses=error_responses(401, 403, 409, 413, 422),
    summary="Record a coder's decisions (accepted, rejected, added, modified) on a note's codes",
)
def create_feedback(
    body: FeedbackRequest,
    response: Response,
    principal: FeedbackCaller,
    info: InfoDep,
    settings: SettingsDep,
    suggester: SuggesterDep,
    db: DatabaseDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> FeedbackResponse:
    """Codes are checked against the knowledge base; the note text is stored only when the
    deployment enables CODESUGGEST_FEEDBACK_STORE_TEXT."""
    info.note_id, info.n_notes = body.note_id, 1
    if body.text is not None:
        info.text_length = len(body.text)
        check_length(body.text, settings.max_text_chars)

    def produce() -> Answer:
        stored, text_stored = store_feedback(
            db,
            suggester.kb,
            body,
            principal,
            info.request_id,
            store_text=settings.feedback_store_text,
            model_version=suggester.model_version,
        )
        answer = FeedbackResponse(
            note_id=body.note_id,
            stored=stored,
            text_stored=text_stored,
            model_version=suggester.model_version,
            code_set_versions=dict(suggester.code_set_versions),
            request_id=info.request_id,
        )
        return Answer(201, answer)

    answer = idempotency.run(
        key_id=principal.key_id,
        idem_key=idempotency_key,
        route="POST /v1/feedback",
        body=body,
        info=info,
        produce=produce,
        models={201: FeedbackResponse},
    )
    answer.apply(response)
    assert isinstance(answer.body, FeedbackResponse)
    return answer.body
