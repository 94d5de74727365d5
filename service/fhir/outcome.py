"""FHIR errors and the ``OperationOutcome`` every FHIR error answer carries.

:class:`FhirError` is a :class:`~pipeline.errors.CodesuggestError` with its own HTTP status and a
list of :class:`Issue` (severity, issue type, what was wrong, where as a FHIRPath expression).
:func:`outcome_for` turns any error a FHIR route can meet (these, the pipeline's domain errors,
authentication, validation, HTTP errors) into ``(status, OperationOutcome)``; the FHIR routes answer
with it instead of the service's plain error body. Messages never quote note text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from pipeline.errors import CodesuggestError, NoteTooLongError
from service.errors import AuthenticationError, PermissionDeniedError, validation_fields


@dataclass(frozen=True, slots=True)
class Issue:
    """One ``OperationOutcome.issue``.

    Attributes:
        code: the issue type (``invalid``, ``required``, ``not-supported``, ``too-long``...).
        diagnostics: what was wrong, for a person.
        expression: FHIRPath of the element concerned (``DocumentReference.content[0]``), if any.
        severity: ``fatal``, ``error``, ``warning`` or ``information``.
    """

    code: str
    diagnostics: str
    expression: str | None = None
    severity: str = "error"

    def to_fhir(self) -> dict[str, Any]:
        """The issue as FHIR JSON."""
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


class FhirError(CodesuggestError):
    """A FHIR request that cannot be served; it becomes an ``OperationOutcome``.

    Args:
        status: the HTTP status (400 unreadable or invalid FHIR, 413 too large, 415 not JSON,
            422 valid FHIR this operation cannot use).
        issues: what was wrong (at least one).
    """

    def __init__(self, status: int, issues: Sequence[Issue]) -> None:
        if not issues:
            raise ValueError("a FhirError needs at least one issue")
        self.http_status = status
        self.issues = list(issues)
        super().__init__("; ".join(i.diagnostics for i in self.issues))


def invalid(diagnostics: str, expression: str | None = None, code: str = "invalid") -> FhirError:
    """A 400 error with one issue: the content is not readable or not valid FHIR.

    Args:
        diagnostics: what was wrong.
        expression: where.
        code: the issue type.

    Returns:
        The error, to raise.
    """
    return FhirError(400, [Issue(code, diagnostics, expression)])


def unusable(diagnostics: str, expression: str | None = None, code: str = "processing") -> FhirError:
    """A 422 error with one issue: valid FHIR that this operation cannot use.

    Args:
        diagnostics: what was wrong.
        expression: where.
        code: the issue type (``not-supported``, ``required``, ``processing``...).

    Returns:
        The error, to raise.
    """
    return FhirError(422, [Issue(code, diagnostics, expression)])


def operation_outcome(issues: Sequence[Issue]) -> dict[str, Any]:
    """An ``OperationOutcome`` resource.

    Args:
        issues: its issues (at least one; FHIR requires one).

    Returns:
        The resource as FHIR JSON.
    """
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


_STATUS_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    412: "business-rule",
    413: "too-long",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    503: "transient",
}


def outcome_for(exc: BaseException, resource_type: str | None = None) -> tuple[int, list[Issue]] | None:
    """The HTTP status and issues of an error met while serving a FHIR request.

    Args:
        exc: the error.
        resource_type: the resource the request was about, to prefix validation paths.

    Returns:
        ``(status, issues)``, or None for an unexpected error (a bug: a 500).
    """
    if isinstance(exc, FhirError):
        return exc.http_status, exc.issues
    if isinstance(exc, AuthenticationError):
        return 401, [Issue("login", str(exc))]
    if isinstance(exc, PermissionDeniedError):
        return 403, [Issue("forbidden", str(exc))]
    if isinstance(exc, NoteTooLongError):
        return 413, [Issue("too-long", str(exc))]
    if isinstance(exc, CodesuggestError):
        status = int(getattr(exc, "http_status", 400))
        return status, [Issue(_STATUS_CODES.get(status, "processing"), str(exc))]
    if isinstance(exc, RequestValidationError):
        fields = validation_fields(exc.errors())
        prefix = f"{resource_type}." if resource_type else ""
        return 400, [Issue("invalid", f["message"], f"{prefix}{f['field']}") for f in fields]
    if isinstance(exc, HTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        return exc.status_code, [Issue(_STATUS_CODES.get(exc.status_code, "processing"), detail)]
    return None
