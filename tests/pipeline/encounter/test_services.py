"""Service lines of the encounter coder: CPT/HCPCS choice, units, modifiers, pointers (real model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from pipeline.encounter.services import in_band, phrase_stated, views_score

if TYPE_CHECKING:
    from pipeline.suggest import Suggester

OFFICE = "OFFICE VISIT - ESTABLISHED PATIENT\n"
ED = "EMERGENCY DEPARTMENT PHYSICIAN NOTE\n"


@dataclass(frozen=True)
class Case:
    """A note and its expected service lines: ``code-MOD-MOD>pointer,pointer``."""

    text: str
    lines: tuple[str, ...]
    lacks: tuple[str, ...] = ()
    units: tuple[tuple[str, int], ...] = ()


CASES = {
    "imaging: two views": Case(
        OFFICE + "Imaging: X-ray of the left ankle, two views, taken and read by me today: no fracture.\n"
        "Assessment: Sprain of the left ankle, initial encounter.\n",
        ("99212-25>S93.402A", "73600-LT>S93.402A"),
        lacks=("73610",),
    ),
    "imaging: three views": Case(
        OFFICE + "Imaging: X-ray of the left ankle, three views, taken and read by me today: no fracture.\n"
        "Assessment: Sprain of the left ankle, initial encounter.\n",
        ("99212-25>S93.402A", "73610-LT>S93.402A"),
        lacks=("73600",),
    ),
    "imaging: both sides on one line": Case(
        "NEW PATIENT VISIT\nImaging: X-rays of both knees, 3 views each, taken and interpreted by me today.\n"
        "Assessment: Primary osteoarthritis of both knees.\n",
        ("99202-25>M17.0", "73562-50>M17.0"),
    ),
    "imaging: interpretation only (26)": Case(
        OFFICE + "Radiology interpretation: Right ankle, 3 views, images obtained at the hospital imaging center, "
        "interpreted by me: no fracture.\nAssessment: Sprain of the right ankle, initial encounter.\n",
        ("99212-25>S93.401A", "73610-26-RT>S93.401A"),
    ),
    "imaging: technical component only (TC)": Case(
        OFFICE + "Imaging: Chest X-ray, 2 views, taken on our office equipment; the formal interpretation is "
        "provided by the contracted radiology group.\nAssessment: Pneumonia.\n",
        ("99212-25>J18.9", "71046-TC>J18.9"),
    ),
    "ED: own ECG reading only": Case(
        ED + "ED course: 12-lead ECG interpreted by me: sinus rhythm. Chest X-ray (read by radiology): clear. "
        "IV ceftriaxone given by nursing.\nFinal impression: Chest pain, unspecified.\n",
        ("99282-25>R07.9", "93010>R07.9"),
        lacks=("71046", "93000", "J0696", "96374"),
    ),
    "lab: waived, no 25": Case(
        OFFICE + "Labs in office: automated urine dipstick (CLIA-waived reader): nitrite positive.\n"
        "Assessment: Acute cystitis without hematuria.\nPlan: nitrofurantoin 100 mg twice daily.\n",
        ("99213>N30.00", "81003-QW>N30.00"),
        lacks=("81002",),
    ),
    "injection: drug units and administration": Case(
        OFFICE + "Plan: ceftriaxone 1 g IM given in the office today.\nAssessment: Pneumonia.\n",
        ("99214-25>J18.9", "96372>J18.9", "J0696>J18.9"),
        units=(("J0696", 4),),
    ),
    "two injections on one side: 59": Case(
        "PROCEDURE NOTE - ESTABLISHED PATIENT\nProcedure 1: Right knee intra-articular injection, 40 mg "
        "triamcinolone acetonide, no image guidance.\nProcedure 2: Right subacromial bursa injection, 40 mg "
        "triamcinolone acetonide, no image guidance.\nDiagnoses: Primary osteoarthritis, right knee. Bursitis "
        "of the right shoulder (subacromial).\n",
        ("20610-RT>M17.11", "20610-59-RT>M75.51", "J3301>M17.11,M75.51"),
        lacks=("20611", "99213"),
        units=(("J3301", 8),),
    ),
    "sent out and ordered tests are not lines": Case(
        OFFICE + "Plan: urine culture sent to the reference laboratory; CT of the abdomen ordered.\n"
        "Assessment: Gross hematuria.\n",
        ("99213>R31.0",),
        lacks=("87086", "74176"),
    ),
    "advice is not a supply": Case(
        OFFICE + "Assessment: Sprain of the left wrist, initial encounter.\nPlan: elastic compression wrap, ice.\n",
        ("99212>S63.502A",),
        lacks=("A6449",),
    ),
    "repair: face group by length": Case(
        ED + "Procedure: Laceration repair: simple single-layer repair, length 2.2 cm.\n"
        "Impression: Laceration of the forehead without foreign body, initial encounter.\n",
        ("99282-25>S01.81XA", "12011>S01.81XA"),
        lacks=("12001",),
    ),
    "repair: lengths summed across one group": Case(
        "URGENT CARE PROCEDURE NOTE\nProcedure: Simple single-layer closure: forearm 2.0 cm and hand 1.5 cm "
        "(total 3.5 cm).\nDiagnoses: Laceration of the left forearm without foreign body; laceration of the left "
        "hand without foreign body; initial encounter.\n",
        ("12002>S51.812A,S61.412A",),
        lacks=("12001",),
    ),
    "vaccine: product and administration": Case(
        "URGENT CARE PROCEDURE NOTE\nProcedure: Tdap vaccine 0.5 mL IM left deltoid given by the nurse.\n"
        "Diagnoses: Immunization given.\n",
        ("90715>Z23", "90471>Z23"),
        lacks=("96372",),
    ),
    "nurse visit: no E/M with the injection": Case(
        "NURSE VISIT\nCyanocobalamin 1000 mcg IM given in the right deltoid by the nurse.\n"
        "Diagnosis: Pernicious anemia.\n",
        ("96372>D51.0", "J3420>D51.0"),
        lacks=("99211", "99212"),
        units=(("J3420", 1),),
    ),
}


def _line(line: object) -> str:
    mods = "".join(f"-{m}" for m in line.modifiers)  # type: ignore[attr-defined]
    return f"{line.code}{mods}>{','.join(line.pointers)}"  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(CASES))
def test_encounter_services_lines(suggester: Suggester, name: str) -> None:
    case = CASES[name]
    result = suggester.suggest(case.text)
    lines = [_line(ln) for ln in result.code_set if ln.system != "ICD10CM"]
    assert sorted(lines) == sorted(case.lines)
    assert not {ln.code for ln in result.code_set} & set(case.lacks)
    for code, units in case.units:
        assert result.extra.get("units", {}).get(code, 1) == units
    for s in result.suggestions:
        if s.status == "suggested" and s.system != "ICD10CM":
            assert s.pointers and s.rules, s.code


@pytest.mark.parametrize(
    ("value", "views", "score"),
    [("2", 2, 2.0), ("2", 3, -2.0), ("3+", 4, 2.0), ("3+", 2, -2.0), ("1-2", 1, 2.0), ("4+", None, 0.0)],
)
def test_encounter_services_views(value: str, views: int | None, score: float) -> None:
    assert views_score(value, views) == score


@pytest.mark.parametrize(
    ("length", "band", "inside"),
    [(2.2, "<=2.5", True), (2.6, "<=2.5", False), (3.5, "2.6-7.5", True), (31.0, ">30.0", True)],
)
def test_encounter_services_size_bands(length: float, band: str, inside: bool) -> None:
    assert in_band(length, band) is inside


@pytest.mark.parametrize(
    ("phrase", "clause", "stated"),
    [
        ("patient lift", "while lifting a box", False),
        ("pair of crutches", "dispensed a pair of crutches", True),
        ("short arm cast", "short arm fiberglass cast applied", True),
    ],
)
def test_encounter_services_phrase_stated(suggester: Suggester, phrase: str, clause: str, stated: bool) -> None:
    coverage = suggester.encounter.coverage
    assert phrase_stated(phrase, coverage.raw_words(clause), coverage) is stated
