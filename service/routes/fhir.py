"""The FHIR R4 endpoint: ``POST /fhir/r4/$suggest-codes``, ``GET /fhir/r4/metadata`` and definitions.

Every answer is ``application/fhir+json``; every error, whatever raised it (a bad resource, an API
key, the note limit, an unknown path), is an ``OperationOutcome`` with a 4xx status
(:class:`FhirRoute`), never the service's plain error body.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.responses import Response

from pipeline.types import Patient
from service.audit import RequestInfo
from service.config import Settings
from service.deps import get_info, get_settings, get_suggester, require
from service.fhir import terminology as t
from service.fhir.conformance import (
    EXTENSIONS,
    OPERATION_ID,
    capability_statement,
    operation_definition,
    structure_definition,
)
from service.fhir.outcome import FhirError, Issue, invalid, operation_outcome, outcome_for
from service.fhir.reading import ClinicalNote, read_operation_input
from service.fhir.writing import code_encounter
from service.security import Principal
from service.suggesting import SuggesterLike

logger = logging.getLogger(__name__)

JSON_TYPES = frozenset({t.FHIR_JSON, "application/json"})


class FhirResponse(JSONResponse):
    """A FHIR JSON answer."""

    media_type = t.FHIR_JSON


def outcome_response(status: int, issues: list[Issue], request: Request) -> FhirResponse:
    """An ``OperationOutcome`` answer.

    Args:
        status: the HTTP status.
        issues: what went wrong.
        request: the request (its id is added as an issue).

    Returns:
        The response (401s carry ``WWW-Authenticate``).
    """
    request_id = getattr(request.state, "request_id", None)
    trace = [Issue("informational", f"request id {request_id}", severity="information")] if request_id else []
    headers = {"WWW-Authenticate": 'Bearer, ApiKey header="X-API-Key"'} if status == 401 else None
    return FhirResponse(operation_outcome([*issues, *trace]), status_code=status, headers=headers)


class FhirRoute(APIRoute):
    """A route whose every error (dependencies, body, handler) is answered with an OperationOutcome."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler so that errors become OperationOutcomes.

        Returns:
            The wrapped handler.
        """
        handler = super().get_route_handler()

        async def fhir_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                found = outcome_for(exc)
                if found is None:
                    logger.exception(
                        "request %s: unexpected %s", getattr(request.state, "request_id", None), type(exc).__name__
                    )
                    found = (
                        500,
                        [Issue("exception", "internal error; the request id identifies it in the service log")],
                    )
                status, issues = found
                logger.info(
                    "request %s failed: %s (%d)", getattr(request.state, "request_id", None), type(exc).__name__, status
                )
                return outcome_response(status, issues, request)

        return fhir_handler


router = APIRouter(prefix="/fhir/r4", tags=["fhir"], route_class=FhirRoute)

_OUTCOME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"const": "OperationOutcome"}, "issue": {"type": "array", "minItems": 1}},
}


def _resource_schema(resource_type: str) -> dict[str, Any]:
    return {"type": "object", "required": ["resourceType"], "properties": {"resourceType": {"const": resource_type}}}


def _fhir_content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {t.FHIR_JSON: {"schema": schema}}}


def _outcomes(*statuses: int) -> dict[int | str, dict[str, Any]]:
    what = {
        400: "Not readable as FHIR JSON, or not valid FHIR; each issue names the element.",
        401: "No API key, or an invalid or revoked one.",
        403: "The key's role may not call this endpoint.",
        404: "No such definition.",
        413: "A note or attachment over CODESUGGEST_MAX_TEXT_CHARS.",
        415: "The body is not JSON (send application/fhir+json).",
        422: "Valid FHIR with no usable note (no inline text/plain attachment, a resource the "
        "operation does not take, an unknown encounter class...).",
    }
    return {status: _fhir_content(_OUTCOME_SCHEMA, what[status]) for status in statuses}


_OPERATION_BODY = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"enum": ["DocumentReference", "Bundle", "Parameters"]}},
}


def _read_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise invalid("the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise invalid(f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None


def _check_media_type(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise FhirError(
            415,
            [
                Issue(
                    "not-supported",
                    f"the body must be FHIR JSON (Content-Type: {t.FHIR_JSON}), not {media or 'untyped'}",
                )
            ],
        )


def _patient(note: ClinicalNote) -> Patient | None:
    if note.age is None and note.sex is None:
        return None
    return Patient(age=note.age, sex=note.sex or "unknown")


def _version(request: Request) -> str:
    """codesuggest's version, as the app declares it (``create_app`` sets it)."""
    return str(request.app.version)


def suggest_codes_bundle(
    body: Any, settings: Settings, suggester: SuggesterLike, info: RequestInfo, software_version: str
) -> dict[str, Any]:
    """Read a ``$suggest-codes`` body, code its note through the one suggest path, answer a Bundle.

    Args:
        body: the parsed JSON body.
        settings: deployment settings (the note limit).
        suggester: the loaded suggester.
        info: the request's audit info (note id and length are recorded).
        software_version: codesuggest's version, for the Device.

    Returns:
        The ``collection`` Bundle.

    Raises:
        FhirError: the body is not a usable FHIR input.
    """
    note = read_operation_input(body, settings.max_text_chars)
    info.note_id, info.text_length, info.n_notes = note.note_id, len(note.text), 1
    result = suggester.suggest(
        note.text,
        setting=note.setting,
        patient=_patient(note),
        encounter_date=note.encounter_date,
        note_id=note.note_id,
    )
    now = dt.datetime.now(dt.UTC)
    return code_encounter(result, note, software_version=software_version, now=now).bundle(now)


@router.post(
    f"/${OPERATION_ID}",
    response_class=FhirResponse,
    summary="Suggest codes for an encounter's notes sent as FHIR (DocumentReference, Bundle or Parameters)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {t.FHIR_JSON: {"schema": _OPERATION_BODY}, "application/json": {"schema": _OPERATION_BODY}},
        }
    },
    responses={
        200: _fhir_content(_resource_schema("Bundle"), "A collection Bundle (see docs/fhir.md)."),
        **_outcomes(400, 401, 403, 413, 415, 422),
    },
)
async def suggest_codes(
    request: Request,
    principal: Annotated[Principal, Depends(require("suggest"))],
    info: Annotated[RequestInfo, Depends(get_info)],
    settings: Annotated[Settings, Depends(get_settings)],
    suggester: Annotated[SuggesterLike, Depends(get_suggester)],
) -> FhirResponse:
    """The ``$suggest-codes`` operation (OperationDefinition at ``/fhir/r4/OperationDefinition/suggest-codes``).

    The body is read only after the API key is checked; decoding and coding run in a worker thread.
    """
    _check_media_type(request)
    raw = await request.body()

    def work() -> dict[str, Any]:
        return suggest_codes_bundle(_read_json(raw), settings, suggester, info, _version(request))

    return FhirResponse(await run_in_threadpool(work))


@router.get(
    "/metadata",
    response_class=FhirResponse,
    summary="The CapabilityStatement (no API key needed)",
    responses={200: _fhir_content(_resource_schema("CapabilityStatement"), "What this FHIR server supports.")},
)
def metadata(request: Request) -> FhirResponse:
    """What this FHIR endpoint supports."""
    base = str(request.url_for("metadata")).removesuffix("/metadata")
    return FhirResponse(capability_statement(_version(request), base, dt.datetime.now(dt.UTC)))


@router.get(
    "/OperationDefinition/{definition_id}",
    response_class=FhirResponse,
    summary="Read the $suggest-codes OperationDefinition (no API key needed)",
    responses={200: _fhir_content(_resource_schema("OperationDefinition"), "The definition."), **_outcomes(404)},
)
def read_operation_definition(definition_id: str, request: Request) -> FhirResponse:
    """The definition of ``$suggest-codes``."""
    if definition_id != OPERATION_ID:
        raise FhirError(404, [Issue("not-found", f"no OperationDefinition {definition_id!r}; there is {OPERATION_ID}")])
    return FhirResponse(operation_definition(_version(request)))


@router.get(
    "/StructureDefinition/{definition_id}",
    response_class=FhirResponse,
    summary="Read the StructureDefinition of an extension the output uses (no API key needed)",
    responses={200: _fhir_content(_resource_schema("StructureDefinition"), "The definition."), **_outcomes(404)},
)
def read_structure_definition(definition_id: str, request: Request) -> FhirResponse:
    """The definition of one of this project's extensions."""
    spec = EXTENSIONS.get(definition_id)
    if spec is None:
        raise FhirError(
            404,
            [Issue("not-found", f"no StructureDefinition {definition_id!r}; there are {', '.join(EXTENSIONS)}")],
        )
    return FhirResponse(structure_definition(spec, _version(request)))


_KNOWN = {"metadata": "GET", f"${OPERATION_ID}": "POST", "OperationDefinition": "GET", "StructureDefinition": "GET"}


@router.api_route(
    "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"], include_in_schema=False
)
def not_supported(path: str, request: Request) -> FhirResponse:
    """Any other FHIR interaction: an OperationOutcome (404, or 405 for a known path)."""
    head = path.split("/")[0]
    if head in _KNOWN and request.method != _KNOWN[head]:
        raise FhirError(
            405, [Issue("not-supported", f"{request.method} is not supported on /fhir/r4/{path}; use {_KNOWN[head]}")]
        )
    raise FhirError(
        404,
        [
            Issue(
                "not-supported",
                f"{request.method} /fhir/r4/{path} is not supported: this server offers GET metadata, POST "
                f"${OPERATION_ID} and reads of its OperationDefinition and StructureDefinitions",
            )
        ],
    )
