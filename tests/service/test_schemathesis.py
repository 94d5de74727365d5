"""Property-based fuzzing of the whole API from its OpenAPI schema (schemathesis, in-process ASGI).

Every operation gets positive (schema-conforming) and negative (schema-violating) requests with
a valid admin key; the checks: no 5xx, documented status codes, content types and headers,
responses conforming to their schemas, and schema-violating requests rejected. The app is the
real one (default model and knowledge base). The budget keeps the run under about two minutes.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
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
EXAMPLES_PER_OPERATION_AND_MODE = 25


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

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                # An operation without parameters or body has no schema-violating request.
                assert mode is GenerationMode.NEGATIVE
            except Exception as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert operations >= 9
    assert not failures, "\n\n".join(failures)
