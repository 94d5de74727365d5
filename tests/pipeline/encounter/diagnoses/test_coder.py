"""Diagnosis rules of the encounter coder, one small note per rule (real default model)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import pytest

from pipeline.encounter.diagnoses.coder import DiagnosisCoder
from pipeline.encounter.diagnoses.rules import load_diagnosis_rules
from pipeline.errors import RuleFileError
from pipeline.suggest import Suggester

OFFICE = "OFFICE VISIT - ESTABLISHED PATIENT\n"
DISCHARGE = "DISCHARGE SUMMARY\n"


@dataclass(frozen=True)
class Case:
    """A note, the setting, and what its diagnosis codes must (not) be."""

    text: str
    setting: str = "outpatient"
    first: str | None = None
    has: tuple[str, ...] = ()
    lacks: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()
    left: tuple[str, ...] = field(default=())


CASES = {
    "7th character initial, laterality": Case(
        OFFICE
        + "HPI: She slipped on a wet floor and fell today.\nAssessment: Sprain of the left ankle, initial encounter.\n",
        first="S93.402A",
        has=("W01.0XXA",),
        lacks=("S93.401A", "S93.409A"),
        rules=("icd.7th", "icd.laterality", "icd.billable", "icd.external_cause"),
    ),
    "7th character subsequent": Case(
        OFFICE + "Assessment: Sprain of the left ankle, subsequent encounter, healing as expected.\n",
        first="S93.402D",
        lacks=("S93.402A",),
    ),
    "7th character sequela, residual first": Case(
        OFFICE + "Assessment: Keloid of the right forearm, sequela of laceration of the right forearm.\n",
        first="L91.0",
        has=("S51.811S",),
        rules=("icd.7th",),
    ),
    "open fracture Gustilo I: B": Case(
        "EMERGENCY DEPARTMENT PHYSICIAN NOTE\nHPI: He fell from a ladder.\nImpression: Open displaced transverse "
        "fracture of the shaft of the left tibia, Gustilo type I, initial encounter.\n",
        first="S82.222B",
        has=("W11.XXXA",),
    ),
    "fracture nonunion: K": Case(
        OFFICE
        + "Assessment: Colles fracture of the right distal radius, closed, subsequent encounter with nonunion.\n",
        first="S52.531K",
    ),
    "uncertain outpatient: the symptom is coded": Case(
        OFFICE + "Assessment: Gross hematuria. Possible nephrolithiasis versus urinary tract infection.\n",
        first="R31.0",
        lacks=("N20.0", "N39.0"),
        left=("uncertain",),
    ),
    "uncertain at inpatient discharge: coded": Case(
        DISCHARGE + "Discharge diagnoses:\n1. Probable aspiration pneumonia.\n2. Essential hypertension.\n",
        setting="inpatient",
        first="J69.0",
        has=("I10",),
        rules=("icd.uncertain.inpatient",),
    ),
    "admission diagnoses are not final": Case(
        DISCHARGE + "Admission diagnosis: chest pain, rule out acute coronary syndrome.\n"
        "Discharge diagnoses:\n1. Gastroesophageal reflux disease.\n",
        setting="inpatient",
        first="K21.9",
        lacks=("I24.9", "R07.9"),
    ),
    "negated and hypothetical": Case(
        OFFICE + "Assessment: Acute cystitis without hematuria. No pyelonephritis. Call if fever develops.\n",
        first="N30.00",
        lacks=("N30.01", "N10", "R50.9"),
        left=("negated",),
    ),
    "family history": Case(
        OFFICE + "Family history: father had colon cancer; mother has type 2 diabetes.\nAssessment: Essential "
        "hypertension.\n",
        first="I10",
        has=("Z80.0", "Z83.3"),
        lacks=("C18.9", "E11.9"),
        rules=("icd.family_history",),
    ),
    "personal history": Case(
        OFFICE + "HPI: History of kidney stones, passed in 2019, none since.\nAssessment: Gross hematuria.\n",
        first="R31.0",
        has=("Z87.442",),
        lacks=("N20.0",),
        rules=("icd.personal_history",),
    ),
    "chronic condition on treatment in the history": Case(
        "EMERGENCY DEPARTMENT PHYSICIAN NOTE\nHPI: History of hypertension on amlodipine.\n"
        "Final impression: Chest pain, unspecified.\n",
        first="R07.9",
        has=("I10",),
        rules=("icd.coexisting",),
    ),
    "integral symptoms": Case(
        OFFICE + "Assessment:\n1. Streptococcal pharyngitis.\n2. Sore throat.\n",
        first="J02.0",
        lacks=("J02.9", "R07.0"),
    ),
    "Excludes1: the site-specific code is kept": Case(
        OFFICE + "Assessment: Acute cystitis without hematuria. Urinary tract infection.\n",
        first="N30.00",
        lacks=("N39.0",),
        rules=("icd.excludes1",),
    ),
    "hypertension with CKD combination": Case(
        OFFICE + "Assessment:\n1. Hypertension.\n2. Chronic kidney disease stage 3a.\n",
        first="I12.9",
        has=("N18.31",),
        lacks=("I10",),
        rules=("icd.combination", "icd.use_additional"),
    ),
    "use additional code: drug use": Case(
        OFFICE + "Assessment: Type 2 diabetes mellitus with hyperglycemia, on metformin.\n",
        first="E11.65",
        has=("Z79.84",),
        lacks=("E11.9",),
        rules=("icd.use_additional",),
    ),
    "use additional code: BMI": Case(
        OFFICE + "45-year-old man.\nAssessment: Morbid obesity due to excess calories, BMI 41.5.\n",
        first="E66.01",
        has=("Z68.41",),
    ),
    "code first": Case(
        DISCHARGE + "Discharge diagnoses:\n1. Alzheimer's disease with dementia, without behavioral disturbance.\n",
        setting="inpatient",
        first="G30.9",
        has=("F02.80",),
        lacks=("F03.90",),
        rules=("icd.code_first",),
    ),
    "query: urosepsis": Case(
        DISCHARGE + "Principal diagnosis: Essential hypertension.\nOther diagnoses: urosepsis.\n",
        setting="inpatient",
        first="I10",
        lacks=("A41.9", "N39.0"),
        queries=("A41",),
    ),
    "query: a treated lab value without a diagnosis": Case(
        OFFICE + "Assessment/Plan:\n1. Hypertension - controlled.\n2. Potassium 3.2 on labs - start potassium "
        "chloride 20 mEq daily.\n",
        first="I10",
        lacks=("E87.6", "R79.89"),
        queries=("E87.6",),
    ),
    "query: conflicting documentation": Case(
        DISCHARGE + "Secondary diagnoses: diabetes mellitus.\nDiabetes documentation: the history lists type 1 "
        "diabetes; the consult notes type 2 diabetes.\n",
        setting="inpatient",
        lacks=("E10.9", "E11.9"),
        queries=("E11",),
    ),
    "follow-up after cancer treatment": Case(
        OFFICE + "Assessment: Follow-up examination after completed treatment of colon cancer.\n",
        first="Z08",
        has=("Z85.038",),
        lacks=("Z09", "C18.9"),
        rules=("icd.redirect",),
    ),
    "first-listed: the first stated condition": Case(
        OFFICE + "Assessment:\n1. Hyperlipidemia.\n2. Essential hypertension.\n",
        first="E78.5",
        has=("I10",),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_encounter_dx_rules(suggester: Suggester, name: str) -> None:
    case = CASES[name]
    result = suggester.suggest(case.text, setting=case.setting)
    dx = [ln for ln in result.code_set if ln.system == "ICD10CM"]
    codes = [ln.code for ln in dx]
    if case.first is not None:
        assert codes[0] == case.first, codes
        assert dx[0].role == ("principal" if case.setting == "inpatient" else "first-listed")
    assert set(case.has) <= set(codes), codes
    assert not set(case.lacks) & set(codes), codes
    rules = {r.id for s in result.suggestions if s.status != "consider" for r in s.rules}
    assert set(case.rules) <= rules, rules
    queries = [s for s in result.suggestions if s.status == "query"]
    for prefix in case.queries:
        assert any(q.code.startswith(prefix) and q.query for q in queries), [q.code for q in queries]
    assert set(case.left) <= {x.reason for x in result.excluded}
    for ln in dx:
        assert suggester.kb.get(ln.code, "ICD10CM").billable  # type: ignore[union-attr]


@pytest.mark.parametrize("where", ["personal_history", "bmi_bands"])
def test_encounter_dx_rules_naming_an_unknown_code_are_refused(
    suggester: Suggester, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    unknown = "Z68.99"
    assert suggester.kb.get(unknown, "ICD10CM") is None
    rules = load_diagnosis_rules()
    if where == "personal_history":
        bad = replace(rules, personal_history=(replace(rules.personal_history[0], code=unknown),))
    else:
        bad = replace(rules, bmi_bands=(*rules.bmi_bands, (90.0, 99.0, unknown)))
    coder = suggester.encounter
    with caplog.at_level(logging.ERROR), pytest.raises(RuleFileError, match=r"Z68\.99 not in the knowledge base"):
        DiagnosisCoder(suggester.kb, bad, coder.reading, coder.coverage)
    assert unknown in caplog.text
