"""Error types, field names and the error body shape."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import EmptyNoteError, InputError, NoteTooLongError, UnknownCodeError
from service.errors import (
    AuthenticationError,
    IdempotencyKeyReusedError,
    TooManyJobsError,
    error_body,
    error_type,
    field_name,
    validation_fields,
)


@pytest.mark.parametrize(
    ("exc", "kind", "status"),
    [
        (EmptyNoteError("x"), "empty_note", 422),
        (NoteTooLongError("x"), "note_too_long", 413),
        (UnknownCodeError("x"), "unknown_code", 404),
        (InputError("x"), "invalid_input", 422),
        (AuthenticationError("x"), "authentication", 401),
        (IdempotencyKeyReusedError("x"), "idempotency_key_reused", 422),
        (TooManyJobsError("x"), "too_many_jobs", 429),
    ],
)
def test_errors_type_and_status_per_class(exc: Exception, kind: str, status: int) -> None:
    assert error_type(exc) == kind
    assert exc.http_status == status  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("loc", "name"),
    [
        (("body", "text"), "text"),
        (("body", "notes", 3, "text"), "notes[3].text"),
        (("body", "patient", "age"), "patient.age"),
        (("query", "limit"), "limit"),
        (("header", "Idempotency-Key"), "Idempotency-Key"),
        (("body",), "body"),
        (("body", 17), "body"),
        (("body", "code_systems", 0), "code_systems[0]"),
    ],
)
def test_errors_field_name_as_the_client_wrote_it(loc: tuple[Any, ...], name: str) -> None:
    assert field_name(loc) == name


def test_errors_validation_fields_drop_inputs_and_prefixes() -> None:
    errors = [
        {
            "loc": ("body", "text"),
            "msg": "Value error, text is empty",
            "input": "SECRET NOTE",
            "type": "value_error",
        },
        {
            "loc": ("body", 5),
            "msg": "JSON decode error",
            "type": "json_invalid",
            "ctx": {"error": "Expecting value"},
        },
    ]
    fields = validation_fields(errors)
    assert fields == [
        {"field": "text", "message": "text is empty"},
        {"field": "body", "message": "invalid JSON: Expecting value"},
    ]
    assert "SECRET" not in str(fields)


@pytest.mark.parametrize("fields", [None, [{"field": "text", "message": "bad"}]])
def test_errors_body_shape(fields: list[dict[str, str]] | None) -> None:
    body = error_body("t", "m", "r", fields)
    assert set(body) == {"error"}
    assert body["error"]["type"] == "t"
    assert ("fields" in body["error"]) == (fields is not None)
