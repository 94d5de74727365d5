"""Service errors and the one place that maps every error to an HTTP answer.

Domain errors come from :mod:`pipeline.errors` and carry their own ``http_status``; the few errors
that only the service can raise (authentication, roles, idempotency, jobs) derive from the same
base class here, so one handler serves them all. Every error body has the same shape::

    {"error": {"type": "empty_note", "message": "...", "request_id": "...", "fields": [...]}}

``fields`` is present for validation errors only; each names a field as the client wrote it
(``notes[3].text``, ``limit``) and says what was wrong with it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.errors import CodesuggestError, InputError

logger = logging.getLogger(__name__)


class AuthenticationError(CodesuggestError):
    """No API key, or one that is malformed, unknown or revoked."""

    http_status = 401


class PermissionDeniedError(CodesuggestError):
    """A valid API key whose role may not call this endpoint."""

    http_status = 403


class NotFoundError(CodesuggestError):
    """A resource (job, API key...) that does not exist or is not the caller's to see."""

    http_status = 404


class IdempotencyKeyReusedError(InputError):
    """An ``Idempotency-Key`` sent again with a different request body."""


class IdempotencyInProgressError(CodesuggestError):
    """An ``Idempotency-Key`` whose first request has not finished yet."""

    http_status = 409


class PayloadTooLargeError(InputError):
    """A request body or batch over the configured size limits."""

    http_status = 413


class TooManyJobsError(CodesuggestError):
    """More asynchronous jobs in progress than the deployment allows."""

    http_status = 429


class ServiceConfigError(CodesuggestError):
    """A ``CODESUGGEST_*`` setting or a command-line option has an unusable value."""


# Error types clients see; the default is the class name in snake case without "_error".
_TYPE_NAMES: dict[type[BaseException], str] = {
    InputError: "invalid_input",
    CodesuggestError: "error",
}
_STATUS_TYPES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def error_type(exc: BaseException) -> str:
    """Return the stable, snake-case error type of an exception class.

    Args:
        exc: the exception.

    Returns:
        For example ``empty_note`` for :class:`~pipeline.errors.EmptyNoteError`.
    """
    cls = type(exc)
    if cls in _TYPE_NAMES:
        return _TYPE_NAMES[cls]
    name = re.sub(r"Error$", "", cls.__name__)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def error_body(
    type_: str,
    message: str,
    request_id: str | None,
    fields: Sequence[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Build the one error body shape of the API.

    Args:
        type_: stable error type (``empty_note``, ``validation_error``...).
        message: what was wrong, for a person.
        request_id: the request's id (also in the ``X-Request-ID`` header).
        fields: for validation errors, ``{"field", "message"}`` per bad field.

    Returns:
        ``{"error": {...}}``.
    """
    error: dict[str, Any] = {"type": type_, "message": message, "request_id": request_id}
    if fields is not None:
        error["fields"] = list(fields)
    return {"error": error}


def field_name(loc: Sequence[Any]) -> str:
    """Render a pydantic error location as the client wrote it (``notes[3].text``).

    Args:
        loc: the location tuple, e.g. ``("body", "notes", 3, "text")``.

    Returns:
        The field path; ``body`` for an error about the body as a whole.
    """
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        where = parts.pop(0)
        if not parts or (where == "body" and all(isinstance(p, int) for p in parts)):
            return "body"
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def validation_fields(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Turn pydantic/FastAPI validation errors into ``{"field", "message"}`` items.

    Args:
        errors: ``RequestValidationError.errors()``.

    Returns:
        One item per error, in order, without the offending input (it may be note text).
    """
    fields = []
    for err in errors:
        loc = err.get("loc", ())
        message = str(err.get("msg", "invalid value"))
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "")
            message = f"invalid JSON: {detail}" if detail else "invalid JSON"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        fields.append({"field": field_name(loc), "message": message})
    return fields


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CodesuggestError)
    status = int(getattr(exc, "http_status", 400))
    logger.info("request %s failed: %s (%d)", _request_id(request), type(exc).__name__, status)
    headers = {"WWW-Authenticate": 'Bearer, ApiKey header="X-API-Key"'} if status == 401 else None
    body = error_body(error_type(exc), str(exc), _request_id(request))
    return JSONResponse(body, status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = validation_fields(exc.errors())
    shown = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    more = f" (and {len(fields) - 5} more)" if len(fields) > 5 else ""
    body = error_body("validation_error", f"invalid request: {shown}{more}", _request_id(request), fields)
    return JSONResponse(body, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 400 and exc.__cause__ is not None:
        # FastAPI reports a body it cannot decode (not UTF-8, ...) as a bare 400; to clients it
        # is invalid JSON like any other, so it gets the same 422 naming the body.
        reason = f"invalid JSON: {type(exc.__cause__).__name__}"
        fields = [{"field": "body", "message": reason}]
        message = f"invalid request: body: {reason}"
        body = error_body("validation_error", message, _request_id(request), fields)
        return JSONResponse(body, status_code=422)
    detail = exc.detail if isinstance(exc.detail, str) else _STATUS_TYPES.get(status, "error")
    if status == 404 and detail == "Not Found":
        detail = f"no such endpoint: {request.method} {request.url.path}"
    elif status == 405:
        detail = f"method {request.method} is not allowed on {request.url.path}"
    body = error_body(_STATUS_TYPES.get(status, "http_error"), detail, _request_id(request))
    return JSONResponse(body, status_code=status, headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    """Register the exception handlers that give every error the same body shape.

    Unexpected exceptions are answered by the request middleware (:mod:`service.audit`), which
    sits inside Starlette's last-resort handler and so can still add the request id and audit row.

    Args:
        app: the application.
    """
    app.add_exception_handler(CodesuggestError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
