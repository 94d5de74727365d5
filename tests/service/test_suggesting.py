"""From pipeline results to API bodies, and from requests to suggester arguments."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from pipeline.errors import NoteTooLongError
from pipeline.types import Evidence, RuleDecision, Suggestion, SuggestionResult
from service.schemas import SuggestionResponse
from service.suggesting import BoundedSuggester, NoteInput, Options, check_length, suggest_many, to_body
from tests.service.conftest import FakeSuggester


@dataclasses.dataclass
class _Basis:
    level: int
    elements: tuple[str, ...]


def _result(extra: dict[str, Any]) -> SuggestionResult:
    suggestion = Suggestion(
        code="S93.401A",
        system="ICD10CM",
        description="Sprain",
        score=np.float32(0.5),  # type: ignore[arg-type]
        rank=1,
        status="query",
        evidence=[Evidence(0, 5, "ankle", None, {"negated": np.bool_(False)})],  # type: ignore[dict-item]
        rules=[RuleDecision("r", "m")],
        query="Which ankle?",
    )
    return SuggestionResult([suggestion], [], [], "m 1", {"ICD10CM": "x"}, "outpatient", 1.23456, 5, extra)


def test_suggesting_body_conforms_to_the_schema_and_is_plain_json() -> None:
    extra = {"em": _Basis(3, ("mdm", "time")), "when": dt.date(2026, 11, 2), "n": np.int64(2), "tags": {"a"}}
    body = to_body(_result(extra), "enc-1", "rid")
    assert isinstance(body, SuggestionResponse)
    document = json.loads(body.model_dump_json())
    assert document["suggestions"][0]["score"] == 0.5
    assert document["suggestions"][0]["query"] == "Which ankle?"
    assert document["encounter"] == {
        "em": {"level": 3, "elements": ["mdm", "time"]},
        "when": "2026-11-02",
        "n": 2,
        "tags": ["a"],
    }
    assert document["elapsed_ms"] == 1.235
    assert document["note_id"] == "enc-1" and document["request_id"] == "rid"


@pytest.mark.parametrize(("length", "limit", "fails"), [(10, 10, False), (11, 10, True), (0, 1, False)])
def test_suggesting_check_length(length: int, limit: int, fails: bool) -> None:
    if fails:
        with pytest.raises(NoteTooLongError, match=r"notes\[2\]\.text has 11 characters"):
            check_length("x" * length, limit, field="notes[2].text")
    else:
        check_length("x" * length, limit)


def test_suggesting_many_groups_by_arguments_and_keeps_order() -> None:
    fake = FakeSuggester()
    notes = [
        NoteInput("ankle a", "a", "outpatient", None, None, None),
        NoteInput("ankle b", "b", "inpatient", None, None, None),
        NoteInput("ankle c", "c", "outpatient", None, None, None),
        NoteInput("diabetes d", "d", "outpatient", None, 40, "male"),
    ]
    bodies = suggest_many(fake, notes, Options(("ICD10CM",), 5, None), "rid")
    assert [b.note_id for b in bodies] == ["a", "b", "c", "d"]
    assert [b.setting for b in bodies] == ["outpatient", "inpatient", "outpatient", "outpatient"]
    assert fake.batch_calls == 1  # a and c together; b and d alone
    assert fake.calls[-1]["patient"].age == 40
    assert all(call["code_systems"] == ["ICD10CM"] and call["top_k"] == 5 for call in fake.calls)


class _Counting(FakeSuggester):
    """Records how many notes are coded at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0
        self.peak = 0
        self.guard = threading.Lock()

    def suggest(self, text: str, **kwargs: Any) -> SuggestionResult:
        with self.guard:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(0.02)
        try:
            return super().suggest(text, **kwargs)
        finally:
            with self.guard:
                self.now -= 1


@pytest.mark.parametrize("limit", [1, 2])
def test_suggesting_bounded_suggester_limits_notes_coded_at_once(limit: int) -> None:
    inner = _Counting()
    bounded = BoundedSuggester(inner, limit)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: bounded.suggest(f"ankle {i}", setting="outpatient"), range(12)))
    assert len(results) == 12
    assert inner.peak == limit
    assert bounded.model_version == inner.model_version
    assert bounded.kb is inner.kb
