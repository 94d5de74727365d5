"""CDS Hooks 2.0: ``GET /cds-services``, ``POST /cds-services/{id}``, ``POST /cds-services/{id}/feedback``.

Service calls and feedback need the EHR's signed JWT (:mod:`service.jwt_auth`; API keys are not
accepted here); discovery is open, and a token sent with it anyway is checked, so that a
misconfigured client learns it at once. The body is read only after the token is accepted.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select

from pipeline.errors import InputError
from pipeline.types import Patient
from service.audit import RequestInfo
from service.cds.cards import build_cards
from service.cds.services import SERVICES, CdsService, FeedbackRequest, HookRequest, read_hook_note
from service.cds.store import CardContext, CdsState, record_feedback
from service.config import Settings
from service.db import Database
from service.deps import get_info, get_settings, get_suggester
from service.encounters import review_url
from service.errors import NotFoundError
from service.jwt_auth import CdsClient
from service.models import Encounter
from service.schemas import error_responses
from service.security import INSECURE_DEV_KEY_ID
from service.suggesting import SuggesterLike

router = APIRouter(prefix="/cds-services", tags=["cds-hooks"])


def workbench_url(request: Request, settings: Settings, encounter_id: str) -> str | None:
    """The workbench review screen of an encounter, when the workbench holds that encounter.

    The EHR puts an encounter on the workbench with ``POST /v1/encounters`` (same encounter id);
    one it never sent there has no review screen, and a link to it would only give a 404.

    Args:
        request: the request (its app holds the database).
        settings: deployment settings (``public_base_url``).
        encounter_id: the EHR's encounter id.

    Returns:
        The absolute URL, or None (the cards then carry no link).
    """
    available = _on_workbench(request.app.state.db, encounter_id)  # the one decision: link or not
    return f"{_base_url(request, settings)}{review_url(quote(encounter_id, safe=''))}" if available else None


def _on_workbench(db: Database, encounter_id: str) -> bool:
    with db.session() as session:
        return session.scalar(select(Encounter.id).where(Encounter.encounter_id == encounter_id)) is not None


def _base_url(request: Request, settings: Settings) -> str:
    return (settings.public_base_url or str(request.base_url)).rstrip("/")


def _state(request: Request) -> CdsState:
    state: CdsState = request.app.state.cds
    return state


def _authenticate(request: Request, settings: Settings, info: RequestInfo, paths: list[str]) -> CdsClient:
    if settings.insecure_dev:
        client = CdsClient(iss="insecure-dev", key_id=INSECURE_DEV_KEY_ID)
    else:
        base = _base_url(request, settings)
        client = _state(request).verifier.verify(request.headers.get("authorization"), [base + p for p in paths])
    info.key_id = client.key_id
    return client


def _service(service_id: str) -> CdsService:
    service = SERVICES.get(service_id)
    if service is None:
        raise NotFoundError(f"no CDS service {service_id!r}; GET /cds-services lists them")
    return service


def service_client(
    service_id: str,
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    info: Annotated[RequestInfo, Depends(get_info)],
) -> CdsClient:
    """The EHR calling a service (its JWT's ``aud`` must be the service's URL).

    Raises:
        NotFoundError: no such service (404).
        AuthenticationError: no JWT, or one that fails a check (401).
    """
    _service(service_id)
    return _authenticate(request, settings, info, [f"/cds-services/{service_id}"])


def feedback_client(
    service_id: str,
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    info: Annotated[RequestInfo, Depends(get_info)],
) -> CdsClient:
    """The EHR sending feedback (``aud`` the feedback URL, or the service's URL).

    Raises:
        NotFoundError: no such service (404).
        AuthenticationError: no JWT, or one that fails a check (401).
    """
    _service(service_id)
    paths = [f"/cds-services/{service_id}/feedback", f"/cds-services/{service_id}"]
    return _authenticate(request, settings, info, paths)


def _parse(raw: bytes, model: type[BaseModel]) -> Any:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"the body is not valid JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` inlined, for ``openapi_extra``."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(model.model_json_schema())}},
        }
    }


class DiscoveryResponse(BaseModel):
    """The CDS services of this server."""

    services: list[dict[str, Any]]


class CardsResponse(BaseModel):
    """A service's answer: cards (none when there is nothing to suggest)."""

    cards: list[dict[str, Any]]


class FeedbackStored(BaseModel):
    """How many coder decisions the feedback became."""

    stored: int = Field(description="Decisions written to the feedback store.")


@router.get(
    "",
    response_model=DiscoveryResponse,
    responses=error_responses(401),
    summary="CDS Hooks discovery (no token needed; one sent is checked)",
)
def discovery(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    info: Annotated[RequestInfo, Depends(get_info)],
) -> dict[str, Any]:
    """The services, their hooks and prefetch templates."""
    if request.headers.get("authorization"):
        _authenticate(request, settings, info, ["/cds-services"])
    return {"services": [service.discovery() for service in SERVICES.values()]}


@router.post(
    "/{service_id}",
    response_model=CardsResponse,
    responses=error_responses(401, 404, 412, 413, 422),
    openapi_extra=_body(HookRequest),
    summary="Call a CDS service: the encounter's suggested code set as cards",
)
async def call_service(
    service_id: str,
    request: Request,
    client: Annotated[CdsClient, Depends(service_client)],
    settings: Annotated[Settings, Depends(get_settings)],
    info: Annotated[RequestInfo, Depends(get_info)],
    suggester: Annotated[SuggesterLike, Depends(get_suggester)],
) -> dict[str, Any]:
    """Codes the prefetched notes of the encounter (412 without the ``documents`` prefetch)."""
    service = _service(service_id)
    raw = await request.body()

    def work() -> dict[str, Any]:
        call: HookRequest = _parse(raw, HookRequest)
        if call.hook != service.hook:
            raise InputError(f"service {service.id} answers hook {service.hook!r}, not {call.hook!r}")
        note = read_hook_note(service, call, settings.max_text_chars)
        info.note_id, info.n_notes = f"Encounter/{call.context.encounterId}", 1
        if note is None:
            return {"cards": []}
        info.text_length = len(note.text)
        patient = None if note.age is None and note.sex is None else Patient(age=note.age, sex=note.sex or "unknown")
        result = suggester.suggest(
            note.text,
            setting=note.setting,
            patient=patient,
            encounter_date=note.encounter_date,
            note_id=note.note_id,
        )
        cards, sent = build_cards(result, note, workbench_url(request, settings, call.context.encounterId))
        context = CardContext(
            service_id=service.id,
            hook_instance=call.hookInstance,
            request_id=info.request_id,
            note_id=note.note_id or f"Encounter/{call.context.encounterId}",
            user=call.context.userId,
            setting=result.setting,
            model_version=result.model_version,
        )
        _state(request).cards.save(sent, context, client)
        return {"cards": cards}

    return await run_in_threadpool(work)


@router.post(
    "/{service_id}/feedback",
    response_model=FeedbackStored,
    responses=error_responses(401, 404, 413, 422),
    openapi_extra=_body(FeedbackRequest),
    summary="Feedback on cards: accepted suggestions and overridden cards become coder decisions",
)
async def feedback(
    service_id: str,
    request: Request,
    client: Annotated[CdsClient, Depends(feedback_client)],
    info: Annotated[RequestInfo, Depends(get_info)],
    suggester: Annotated[SuggesterLike, Depends(get_suggester)],
) -> dict[str, Any]:
    """Records each accepted suggestion as ``accepted`` and each code of an overridden card as
    ``rejected`` (with the reason) in the feedback store."""
    raw = await request.body()

    def work() -> dict[str, Any]:
        body: FeedbackRequest = _parse(raw, FeedbackRequest)
        stored = record_feedback(
            body.feedback, service_id, client, _state(request).cards, suggester.kb, info.request_id
        )
        return {"stored": stored}

    return await run_in_threadpool(work)
