"""Request ids, response headers, body limits, the access log and the audit table.

:class:`RequestMiddleware` wraps every HTTP request. It

* gives the request an id (the caller's ``X-Request-ID`` when well formed, else a new one);
* refuses bodies over ``CODESUGGEST_MAX_BODY_BYTES`` with 413;
* adds ``X-Request-ID``, ``X-Model-Version`` and ``X-Code-Set-Versions`` to every answer;
* answers an unexpected exception with the usual error body and a 500 (never a traceback);
* logs one line per request (id, method, route, status, key, lengths, time) and writes an
  :class:`~service.models.AuditEntry` for every ``/v1``, ``/fhir`` and ``/cds-services`` call.

Routes and dependencies fill in the :class:`RequestInfo` (key id, note id, text length) that the
log line and the audit row report. Neither ever holds note text.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.db import Database
from service.errors import error_body
from service.models import AuditEntry

logger = logging.getLogger(__name__)

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Calls that carry or may carry notes: the JSON API, the FHIR endpoint and the CDS Hooks services.
AUDITED_PREFIXES = ("/v1/", "/fhir/", "/cds-services")
QUIET_ROUTES = frozenset({"/health/live", "/health/ready"})


@dataclass(slots=True)
class RequestInfo:
    """What the log line and the audit row say about a request (never any note text).

    Attributes:
        request_id: the request's id.
        key_id: the caller's API key id, once authenticated.
        note_id: the note id the request is about, if any.
        text_length: characters of note text in the request.
        n_notes: notes in the request.
        replay: the answer is a stored idempotent answer.
    """

    request_id: str
    key_id: str | None = None
    note_id: str | None = None
    text_length: int | None = None
    n_notes: int | None = None
    replay: bool = False


def new_request_id() -> str:
    """Return a fresh request id (32 hex digits)."""
    return uuid.uuid4().hex


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path[:200]
    return "(unmatched)"


def _header_value(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1").replace("\n", " ")[:500]


class RequestMiddleware:
    """The outermost application middleware (see the module docstring).

    Args:
        app: the wrapped application.
        max_body_bytes: largest request body accepted.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id", "")
        info = RequestInfo(incoming if _REQUEST_ID_RE.match(incoming) else new_request_id())
        state = scope.setdefault("state", {})
        state["info"] = info
        state["request_id"] = info.request_id
        app_state = scope["app"].state
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                out = MutableHeaders(scope=message)
                out["X-Request-ID"] = info.request_id
                model_version, versions = _versions(app_state)
                out["X-Model-Version"] = _header_value(model_version)
                out["X-Code-Set-Versions"] = _header_value(";".join(f"{k}={v}" for k, v in sorted(versions.items())))
            await send(message)

        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413, self._too_large())
            return message

        try:
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                await self._send_error(send_with_headers, 413, "payload_too_large", self._too_large(), info)
            else:
                await self.app(scope, receive_limited, send_with_headers)
        except Exception as exc:
            logger.exception("request %s: unexpected %s", info.request_id, type(exc).__name__)
            if response_started:
                raise
            await self._send_error(
                send_with_headers,
                500,
                "internal_error",
                "internal error; the request id identifies it in the service log",
                info,
            )
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            method = scope.get("method", "")
            route = _route_of(scope)
            # Health probes come every few seconds; they are logged only at DEBUG.
            level = logging.INFO if route not in QUIET_ROUTES or status >= 400 else logging.DEBUG
            logger.log(
                level,
                "request %s %s %s -> %d key=%s notes=%s chars=%s replay=%s %.1f ms",
                info.request_id,
                method,
                route,
                status,
                info.key_id or "-",
                info.n_notes if info.n_notes is not None else "-",
                info.text_length if info.text_length is not None else "-",
                info.replay,
                elapsed_ms,
            )
            database = getattr(app_state, "db", None)
            if database is not None and scope.get("path", "").startswith(AUDITED_PREFIXES):
                await anyio.to_thread.run_sync(_write_audit, database, info, method, route, status, elapsed_ms)

    def _too_large(self) -> str:
        return f"request body over {self.max_body_bytes:,} bytes (CODESUGGEST_MAX_BODY_BYTES)"

    @staticmethod
    async def _send_error(
        send: Callable[[Message], Any], status: int, type_: str, message: str, info: RequestInfo
    ) -> None:
        body = json.dumps(error_body(type_, message, info.request_id)).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _versions(app_state: Any) -> tuple[str, dict[str, str]]:
    suggester = getattr(app_state, "suggester", None)
    if suggester is None:
        return "unloaded", {}
    return str(suggester.model_version), dict(suggester.code_set_versions)


def _write_audit(
    database: Database, info: RequestInfo, method: str, route: str, status: int, elapsed_ms: float
) -> None:
    entry = AuditEntry(
        request_id=info.request_id,
        key_id=info.key_id,
        method=method[:10],
        route=route,
        status=status,
        note_id=info.note_id[:200] if info.note_id else None,
        text_length=info.text_length,
        n_notes=info.n_notes,
        elapsed_ms=round(elapsed_ms, 3),
        replay=info.replay,
    )
    try:
        with database.session() as session:
            session.add(entry)
    except SQLAlchemyError as exc:
        # An audit failure must not turn a delivered answer into an error; it is logged loudly.
        logger.error("request %s: audit row not written: %s", info.request_id, type(exc).__name__)
