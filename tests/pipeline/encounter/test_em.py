"""Evaluation and management: whether an E/M is reported, and its level by time or decision making."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pipeline.suggest import Suggester

ESTABLISHED = "OFFICE VISIT - ESTABLISHED PATIENT\n"
NEW = "NEW PATIENT VISIT\n"
STABLE = "Assessment: Essential hypertension, controlled.\n"


@pytest.mark.parametrize(
    ("header", "minutes", "code"),
    [
        (ESTABLISHED, 10, "99212"),
        (ESTABLISHED, 19, "99212"),
        (ESTABLISHED, 20, "99213"),
        (ESTABLISHED, 34, "99214"),
        (ESTABLISHED, 40, "99215"),
        (NEW, 15, "99202"),
        (NEW, 30, "99203"),
        (NEW, 50, "99204"),
        (NEW, 62, "99205"),
    ],
)
def test_encounter_em_level_by_total_time(suggester: Suggester, header: str, minutes: int, code: str) -> None:
    text = header + STABLE + f"Total time on the date of the encounter: {minutes} minutes.\n"
    result = suggester.suggest(text)
    em = result.extra["em"]
    assert (em["code"], em["basis"], em["minutes"]) == (code, "time", minutes)
    line = next(s for s in result.suggestions if s.code == code)
    assert any(r.id == "em.time" for r in line.rules) and any(r.id == "em.new_vs_established" for r in line.rules)


@pytest.mark.parametrize(
    ("text", "code", "mdm", "elements"),
    [
        (ESTABLISHED + STABLE, "99212", "straightforward", ("low", "minimal", "minimal")),
        (  # chronic illness with progression and a prescription change: moderate, moderate
            ESTABLISHED
            + "Assessment: Essential hypertension, not at goal.\nPlan: amlodipine increased to 10 mg daily.\n",
            "99214",
            "moderate",
            ("moderate", "minimal", "moderate"),
        ),
        (  # acute uncomplicated injury and an over-the-counter drug: low
            ESTABLISHED + "Assessment: Sprain of the left wrist, initial encounter.\nPlan: ibuprofen over the "
            "counter, ice.\n",
            "99213",
            "low",
            ("low", "minimal", "low"),
        ),
        (  # an independent historian makes the data limited
            NEW + "HPI: 4-year-old brought by her mother, who gives the history.\nAssessment: Acute suppurative "
            "otitis media, both ears, without rupture of the eardrum.\nPlan: amoxicillin 90 mg/kg/day.\n",
            "99203",
            "low",
            ("low", "limited", "moderate"),
        ),
        (  # ED: threat to a limb and a decision for admission
            "EMERGENCY DEPARTMENT PHYSICIAN NOTE\nImpression: Open displaced fracture of the shaft of the right "
            "tibia, initial encounter.\nMDM: acute injury posing a threat to limb function; decision for hospital "
            "admission and emergency surgery.\n",
            "99285",
            "high",
            ("high", "minimal", "high"),
        ),
    ],
)
def test_encounter_em_level_by_decision_making(
    suggester: Suggester, text: str, code: str, mdm: str, elements: tuple[str, str, str]
) -> None:
    em = suggester.suggest(text).extra["em"]
    assert (em["code"], em["basis"], em["mdm"]) == (code, "mdm", mdm)
    assert tuple(em["elements"][k]["level"] for k in ("problems", "data", "risk")) == elements


@pytest.mark.parametrize(
    ("text", "patient"),
    [
        ("NEW PATIENT VISIT\n" + STABLE, "new"),
        ("OFFICE VISIT\n27-year-old man, new to our practice.\n" + STABLE, "new"),
        (
            "OFFICE VISIT\nSeen by my partner in this same group last year, so an established patient.\n" + STABLE,
            "established",
        ),
        ("OFFICE VISIT\n" + STABLE, "established"),
    ],
)
def test_encounter_em_new_or_established(suggester: Suggester, text: str, patient: str) -> None:
    assert suggester.suggest(text).extra["em"]["patient"] == patient


@pytest.mark.parametrize(
    "title",
    ["PROCEDURE NOTE - ESTABLISHED PATIENT", "PROCEDURE VISIT", "NURSE VISIT"],
)
def test_encounter_em_not_reported_for_procedure_visits(suggester: Suggester, title: str) -> None:
    result = suggester.suggest(title + "\nDiagnosis: Essential hypertension.\n")
    assert result.extra["em"]["code"] is None
    assert not [ln for ln in result.code_set if ln.role == "em"]


def test_encounter_em_separately_evaluated_problem_with_a_procedure(suggester: Suggester) -> None:
    text = (
        ESTABLISHED
        + "Procedure: Incision and drainage of right axillary abscess, simple, single incision.\n"
        + "Assessment/Plan:\n1. Cutaneous abscess of the right axilla - drained.\n"
        + "2. Essential hypertension, not at goal - separately evaluated today; amlodipine increased to 10 mg.\n"
    )
    result = suggester.suggest(text)
    em = next(ln for ln in result.code_set if ln.role == "em")
    assert (em.code, em.modifiers, em.pointers) == ("99214", ["25"], ["I10"])
    assert [ln.code for ln in result.code_set if ln.role == "procedure"] == ["10060"]


def test_encounter_em_inpatient_has_no_service_lines(suggester: Suggester) -> None:
    result = suggester.suggest(
        "DISCHARGE SUMMARY\nDischarge diagnoses:\n1. Essential hypertension.\n", setting="inpatient"
    )
    assert "em" not in result.extra
    assert all(ln.system == "ICD10CM" for ln in result.code_set)
    assert result.code_set[0].role == "principal"
