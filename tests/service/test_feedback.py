"""POST /v1/feedback and the export of feedback as a training corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from corpora.format import read_corpus
from service.feedback import export_feedback
from service.models import FeedbackEntry
from tests.service.conftest import Service

NOTE = "Right ankle sprain after a fall from a ladder."


def send(svc: Service, body: dict[str, Any], role: str = "coder") -> Any:
    return svc.client.post("/v1/feedback", json=body, headers=svc.headers(role))


def feedback(
    note_id: str, *decisions: dict[str, Any], text: str | None = None, user: str = "coder-1"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "note_id": note_id,
        "user": user,
        "decisions": list(decisions),
        "setting": "outpatient",
    }
    if text is not None:
        body["text"] = text
    return body


def test_feedback_stores_each_decision_with_canonical_codes(service: Service) -> None:
    body = feedback(
        "enc-1",
        {"code": "s93401a", "decision": "accepted"},
        {"code": "W11.XXXA", "decision": "added", "reason": "fall from ladder"},
        {"code": "S93.409A", "decision": "modified", "replaced_by": "S93.401A"},
        {"code": "99213", "decision": "rejected"},
        {"code": "99214", "system": "CPT", "decision": "added"},
    )
    body["suggestion_request_id"] = "abc123"
    response = send(service, body)
    assert response.status_code == 201, response.text
    data = response.json()
    assert (data["stored"], data["text_stored"], data["note_id"]) == (5, False, "enc-1")
    assert data["model_version"] == "fake-model 0.0.1"
    with service.db.session() as session:
        rows = session.scalars(select(FeedbackEntry).order_by(FeedbackEntry.id)).all()
    assert [(r.system, r.code, r.decision) for r in rows] == [
        ("ICD10CM", "S93.401A", "accepted"),
        ("ICD10CM", "W11.XXXA", "added"),
        ("ICD10CM", "S93.409A", "modified"),
        ("CPT", "99213", "rejected"),
        ("CPT", "99214", "added"),  # well-formed CPT outside the lexicon: accepted
    ]
    assert rows[2].replaced_by == "S93.401A" and rows[2].replaced_by_system == "ICD10CM"
    assert {r.user for r in rows} == {"coder-1"}
    assert {r.suggestion_request_id for r in rows} == {"abc123"}
    assert rows[0].key_id == service.keys["coder"].split("_")[1]


@pytest.mark.parametrize(
    ("decision", "field"),
    [
        ({"code": "S93.401A", "decision": "modified"}, "decisions[0]"),
        ({"code": "S93.401A", "decision": "accepted", "replaced_by": "S93.409A"}, "decisions[0]"),
        ({"code": "S93.401A", "decision": "liked"}, "decisions[0].decision"),
        ({"code": "not a code", "decision": "accepted"}, "decisions[0].code"),
        ({"code": "Z99.999", "decision": "accepted"}, "decisions[0].code"),
        (
            {"code": "S93.401A", "decision": "modified", "replaced_by": "Q"},
            "decisions[0].replaced_by",
        ),
        ({"code": "L1906", "system": "CPT", "decision": "accepted"}, "decisions[0].code"),
        ({"code": "S93.401A", "decision": "accepted", "reason": "x" * 1001}, "decisions[0].reason"),
    ],
)
def test_feedback_rejects_bad_decisions_naming_the_field(
    service: Service, decision: dict[str, Any], field: str
) -> None:
    response = send(service, feedback("enc-2", decision))
    assert response.status_code == 422, response.text
    assert field in [f["field"] for f in response.json()["error"]["fields"]]
    with service.db.session() as session:
        assert session.scalars(select(FeedbackEntry)).all() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user": "u", "decisions": [{"code": "S93.401A", "decision": "accepted"}]}, "note_id"),
        ({"note_id": "n", "decisions": [{"code": "S93.401A", "decision": "accepted"}]}, "user"),
        ({"note_id": "n", "user": "u", "decisions": []}, "decisions"),
    ],
)
def test_feedback_requires_note_user_and_decisions(service: Service, body: dict[str, Any], field: str) -> None:
    response = send(service, body)
    assert response.status_code == 422
    assert field in [f["field"] for f in response.json()["error"]["fields"]]


@pytest.mark.parametrize(("store", "stored"), [(False, False), (True, True)])
def test_feedback_text_is_stored_only_when_enabled(service_factory: Any, store: bool, stored: bool) -> None:
    svc = service_factory(feedback_store_text=store)
    response = send(svc, feedback("enc-3", {"code": "S93.401A", "decision": "accepted"}, text=NOTE))
    assert response.status_code == 201
    assert response.json()["text_stored"] is stored


def test_feedback_text_over_the_limit_is_413(service_factory: Any) -> None:
    svc = service_factory(max_text_chars=10, feedback_store_text=True)
    response = send(svc, feedback("enc-4", {"code": "S93.401A", "decision": "accepted"}, text=NOTE))
    assert response.status_code == 413


def test_feedback_export_writes_a_corpus_and_reports_skips(service_factory: Any, tmp_path: Path) -> None:
    svc = service_factory(feedback_store_text=True)
    send(
        svc,
        feedback(
            "with-text",
            {"code": "S93.409A", "decision": "modified", "replaced_by": "S93.401A"},
            {"code": "W11.XXXA", "decision": "added"},
            {"code": "99213", "decision": "rejected"},
            {"code": "L1906", "decision": "accepted"},
            text=NOTE,
        ),
    )
    # A second coder later rejects the orthosis: the latest decision about a code wins.
    send(svc, feedback("with-text", {"code": "L1906", "decision": "rejected"}, user="coder-2"))
    send(
        svc,
        feedback("all-rejected", {"code": "E11.9", "decision": "rejected"}, text="Diabetes ruled out."),
    )
    svc.settings = svc.settings.model_copy(update={"feedback_store_text": False})
    svc.client.app.state.settings = svc.settings  # type: ignore[attr-defined]
    send(svc, feedback("no-text", {"code": "E11.9", "decision": "accepted"}, text="Type 2 diabetes."))
    out = tmp_path / "out" / "feedback.jsonl"
    report = export_feedback(svc.db, out)
    assert (report.written, report.skipped_no_text, report.skipped_no_codes, report.decisions) == (
        1,
        1,
        1,
        7,
    )
    assert report.skipped_ids == {"no_text": ["no-text"], "no_codes": ["all-rejected"]}
    notes = read_corpus(out)
    assert [n.id for n in notes] == ["with-text"]
    assert notes[0].text == NOTE
    assert [(c.system, c.code) for c in notes[0].codes] == [
        ("ICD10CM", "S93.401A"),
        ("ICD10CM", "W11.XXXA"),
    ]
    assert notes[0].setting == "outpatient"
    assert notes[0].meta["users"] == ["coder-1", "coder-2"]
    line = json.loads(out.read_text().splitlines()[0])
    assert set(line) <= {"id", "text", "codes", "setting", "spans", "meta"}
    assert "skipped 1 notes whose text was not stored" in report.summary()
