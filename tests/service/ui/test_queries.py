"""Physician queries: compliant wording, drafting from a query suggestion, hold and release."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pipeline.errors import InputError
from pipeline.types import Evidence, RuleDecision, Suggestion
from service.models import Encounter, PhysicianQuery
from service.queries import Draft, check_wording, compose, draft_from_suggestion, load_templates
from tests.service.ui.conftest import Workbench, WorkbenchKB, csrf_of


def test_queries_templates_load_and_always_offer_other_and_undetermined() -> None:
    templates = load_templates()
    assert {"specificity", "laterality", "present_on_admission", "open"} <= {t.id for t in templates.templates}
    text = compose(Draft("laterality", "ankle sprain", '"sprained ankle" (assessment)', ()), "outpatient")
    assert text.splitlines()[1:] == [
        "1. Right",
        "2. Left",
        "3. Bilateral",
        "4. Other (please specify)",
        "5. Clinically unable to determine",
    ]


@pytest.mark.parametrize(
    ("phrase", "rule"),
    [
        ("This would increase the DRG weight.", "financial"),
        ("Would you agree the patient has sepsis?", "leading"),
        ("Please confirm acute respiratory failure.", "leading"),
        ("Needed for reimbursement.", "financial"),
    ],
)
def test_queries_leading_and_financial_wording_is_refused(phrase: str, rule: str) -> None:
    assert rule in {p.rule for p in check_wording(phrase)}
    with pytest.raises(InputError, match="not compliant"):
        compose(Draft("open", "pneumonia", phrase, ()), "inpatient")


def test_queries_clinical_words_are_not_mistaken_for_money() -> None:
    assert check_wording("HCC on imaging; paid attention to the MRI; CC of chest pain") == []


def test_queries_yes_no_only_for_inpatient_present_on_admission() -> None:
    with pytest.raises(InputError, match="inpatient"):
        compose(Draft("present_on_admission", "pressure ulcer", '"stage 2 ulcer"', ()), "outpatient")
    assert "1. Yes" in compose(Draft("present_on_admission", "pressure ulcer", '"stage 2 ulcer"', ()), "inpatient")


def test_queries_draft_from_a_header_code_lists_its_billable_codes() -> None:
    note = "Assessment: sprain of the ankle."
    suggestion = Suggestion(
        "S93.40",
        "ICD10CM",
        "Sprain of unspecified ligament of ankle",
        0.0,
        0,
        "query",
        evidence=[Evidence(12, 31, note[12:31], "assessment", {})],
        rules=[RuleDecision("icd.billable", "only billable codes are reported (I.A.6)")],
    )
    from dataclasses import asdict

    draft = draft_from_suggestion(WorkbenchKB(), asdict(suggestion), note)
    assert draft.template == "specificity" and draft.code == "S93.40"
    assert draft.indicators == '"sprain of the ankle" (assessment)'
    assert "Sprain of right ankle, subsequent encounter" in draft.options


def test_queries_flow_hold_blocks_submit_and_answer_releases(workbench: Workbench, coder: TestClient) -> None:
    workbench.post_encounter("enc-q")
    page = coder.get("/ui/encounters/enc-q").text
    assert 'data-testid="query-create"' in page
    refused = coder.post(
        "/ui/encounters/enc-q/queries",
        data={
            "csrf_token": csrf_of(page),
            "template": "open",
            "condition": "diabetes",
            "indicators": "please confirm it",
        },
    )
    assert refused.status_code == 422 and "not compliant" in refused.text
    sent = coder.post(
        "/ui/encounters/enc-q/queries",
        data={
            "csrf_token": csrf_of(page),
            "template": "specificity",
            "condition": "diabetes",
            "indicators": '"Type 2 diabetes, stable on metformin" (assessment)',
            "options": "Type 2 diabetes without complications\nType 2 diabetes with hyperglycemia",
            "addressed_to": "Dr. Attending",
        },
    )
    assert sent.status_code == 200 and 'data-testid="query" data-status="open"' in sent.text
    assert "On hold" in sent.text
    with workbench.svc.db.session() as session:
        assert session.scalars(select(Encounter.status)).one() == "on_hold"
        query = session.scalars(select(PhysicianQuery)).one()
        assert query.question_sealed is not None and b"metformin" not in query.question_sealed
    page = sent.text
    for line in re.findall(r'data-line="(\d+)"', page):
        coder.post(
            f"/ui/encounters/enc-q/lines/{line}/decision", data={"csrf_token": csrf_of(page), "decision": "accepted"}
        )
    held = coder.post("/ui/encounters/enc-q/submit", data={"csrf_token": csrf_of(page)})
    assert held.status_code == 422 and "query is still open" in held.text
    on_hold = coder.get("/ui/worklist", params={"status": "on_hold"}).text
    assert 'data-encounter="enc-q"' in on_hold and "1 open query" in on_hold
    answered = coder.post(
        f"/ui/encounters/enc-q/queries/{query.id}",
        data={"csrf_token": csrf_of(page), "answer": "Type 2 diabetes without complications"},
    )
    assert 'data-status="answered"' in answered.text and "Answer:" in answered.text
    assert coder.post("/ui/encounters/enc-q/submit", data={"csrf_token": csrf_of(page)}).url.path == "/ui/worklist"


def test_queries_form_prefills_from_a_query_suggestion(workbench: Workbench, coder: TestClient) -> None:
    workbench.post_encounter("enc-f")
    coder.get("/ui/encounters/enc-f")
    page = coder.get("/ui/encounters/enc-f/queries/new", params={"code": "S93.401A", "template": "laterality"})
    assert page.status_code == 200
    assert 'value="laterality" selected' in page.text and "Sprain of unspecified ligament of right ankle" in page.text
