"""Validation with the ``fhir.resources`` models (R4B: its default package is R5).

FHIR R4B (4.3.0) changed no element of the resources this service reads or writes
(DocumentReference, Composition, Bundle, Parameters, Patient, Encounter, Condition, Procedure,
Claim, Device, Provenance, OperationOutcome and the conformance resources) from R4 (4.0.1), so
its models check R4 content; they check structure, cardinality and primitive formats, not
value-set bindings or invariants.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from service.fhir.outcome import FhirError, Issue

logger = logging.getLogger(__name__)


def _model(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(resource_type)


def fhir_path(resource_type: str, loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as a FHIRPath expression.

    Args:
        resource_type: the root resource.
        loc: the location, e.g. ``("content", 0, "attachment", "data")``.

    Returns:
        For example ``DocumentReference.content[0].attachment.data``.
    """
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "resource_type":
            path += ".resourceType"
        else:
            path += f".{part}"
    return path


def validation_issues(resource_type: str, exc: ValidationError) -> list[Issue]:
    """The issues of a failed validation, without the offending values (they may be note text).

    Args:
        resource_type: the root resource.
        exc: the pydantic error.

    Returns:
        One ``invalid`` issue per error.
    """
    issues = []
    for err in exc.errors(include_input=False, include_url=False):
        message = str(err.get("msg", "invalid value")).split("\n")[0].strip()
        message = " ".join(message.split())
        issues.append(Issue("invalid", message, fhir_path(resource_type, tuple(err.get("loc", ())))))
    return issues


def check_input(resource: dict[str, Any]) -> None:
    """Check a resource a client sent.

    Args:
        resource: FHIR JSON with a known ``resourceType``.

    Raises:
        FhirError: 400, one issue per element that is not valid FHIR.
    """
    resource_type = str(resource.get("resourceType"))
    try:
        _model(resource_type).model_validate(resource)
    except ValidationError as exc:
        raise FhirError(400, validation_issues(resource_type, exc)) from None


def check_output(resource: dict[str, Any]) -> None:
    """Check a resource this service built before it is sent.

    Args:
        resource: FHIR JSON.

    Raises:
        ValueError: the resource is not valid FHIR (a bug: the message lists every error).
    """
    resource_type = str(resource.get("resourceType"))
    try:
        _model(resource_type).model_validate(resource)
    except ValidationError as exc:
        problems = "; ".join(f"{i.expression}: {i.diagnostics}" for i in validation_issues(resource_type, exc))
        raise ValueError(f"built an invalid {resource_type}: {problems}") from None


def is_resource_type(name: str) -> bool:
    """Whether ``name`` is a resource type of FHIR R4B.

    Args:
        name: a candidate ``resourceType``.

    Returns:
        True for ``Patient``, ``Bundle``...; False for anything else.
    """
    try:
        _model(name)
    except (ValueError, AttributeError):
        return False
    return name[:1].isupper()
