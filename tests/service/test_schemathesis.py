"""Property-based fuzzing of the whole API from its OpenAPI schema (schemathesis, in-process ASGI).

Every operation gets positive (schema-conforming) and negative (schema-violating) requests with
a valid admin key; the checks: no 5xx, documented status codes, content types and headers,
responses conforming to their schemas, and schema-violating requests rejected. The app is the
real one (default model and knowledge base, loaded by the lifespan).

The budget keeps the run near two minutes: a fixed number of examples per operation and mode,
no shrinking, and positive bodies trimmed to at most three notes of 1,000 characters (still
schema-conforming), because coding long random text is what costs time, not what finds bugs.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.service.conftest import Service

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES = 40
MAX_NOTES = 3
MAX_CHARS = 1000


def _trim(holder: dict[str, Any]) -> None:
    text = holder.get("text")
    if isinstance(text, str) and text[:MAX_CHARS].strip():
        holder["text"] = text[:MAX_CHARS]


def bounded(case: schemathesis.Case) -> schemathesis.Case:
    """Trim a positive body to a few short notes; it stays valid for the schema."""
    body: Any = case.body
    if isinstance(body, dict):
        _trim(body)
        notes = body.get("notes")
        if isinstance(notes, list):
            del notes[MAX_NOTES:]
            for note in notes:
                if isinstance(note, dict):
                    _trim(note)
    return case


def describe(exc: BaseException) -> str:
    """The messages of an exception and of everything it groups."""
    parts = [f"{type(exc).__name__}: {exc}"]
    for inner in getattr(exc, "exceptions", ()):
        parts.append(describe(inner))
    return "\n".join(parts)


def test_schemathesis_api_conforms_to_its_schema(real_service: Service) -> None:
    app = real_service.client.app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = real_service.headers("admin")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            if mode is GenerationMode.POSITIVE:
                strategy = strategy.map(bounded)

            @given(case=strategy)
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS, timeout=120)

            try:
                run()
            except Unsatisfiable:
                # An operation without parameters or body has no schema-violating request.
                assert mode is GenerationMode.NEGATIVE
            except Exception as exc:
                failures.append(f"{operation.label} ({mode.value}):\n{describe(exc)}")
    assert operations >= 9
    assert not failures, "\n\n".join(failures)
