"""What ``us_inpatient_ed.jsonl`` promises beyond the checks every synthetic file gets.

``test_synthetic.py`` checks every file in ``corpora/synthetic`` (billable codes, tabular
relations, claim order, E/M levels for office, ED, hospital and critical care, modifiers, rule
labels, chapters). This module adds what the inpatient/ED file itself promises in
``corpora/synthetic/README.md``: its size, ids and held-out split spread over its specialties, the
services each kind of encounter may carry (facility inpatient claims without CPT lines, infusion
visits with drug units and no visit code, professional hospital claims with their E/M), and a
guideline section cited in every note's reasons. Each per-note check names the note.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from corpora.format import CorpusNote, read_corpus

CORPUS = Path(__file__).resolve().parents[2] / "corpora" / "synthetic" / "us_inpatient_ed.jsonl"
NOTES = read_corpus(CORPUS)
IDS = [n.id for n in NOTES]

SPECIALTIES = frozenset(
    {
        "infectious-disease",
        "cardiology",
        "pulmonology",
        "nephrology",
        "gastroenterology",
        "neurology",
        "endocrinology",
        "toxicology",
        "trauma",
        "burns",
        "obstetrics",
        "oncology",
        "psychiatry",
        "wound-care",
        "hospital-medicine",
        "hematology",
        "emergency-medicine",
        "critical-care",
    }
)
ENCOUNTERS = frozenset({"ed", "inpatient", "observation", "hospital", "procedure"})
# Hospital inpatient or observation care (CPT 2023) and critical care: the E/M families a
# hospitalist or observation claim may carry.
HOSPITAL_EM = re.compile(r"^992(2[1-3]|3[1-9])$")
GUIDELINE_SECTION = re.compile(r"\b(I\.[ABC][.0-9a-z]*|II(\.[A-H])?|III|IV(\.[A-Z])?)\b")


def _em_codes(note: CorpusNote) -> list[str]:
    return [c.code for c in note.codes if c.role == "em"]


def test_synthetic_ip_ed_size_ids_and_split() -> None:
    assert len(NOTES) >= 130
    numbers = []
    for note in NOTES:
        match = re.fullmatch(r"synthetic-(2\d{3})-[a-z0-9]+(?:-[a-z0-9]+)*", note.id)
        assert match, note.id
        numbers.append(int(match.group(1)))
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    specialties = Counter(n.meta["specialty"] for n in NOTES)
    assert len(specialties) >= 10, specialties
    holdout = [n for n in NOTES if n.meta["split"] == "holdout"]
    assert 0.2 <= len(holdout) / len(NOTES) <= 0.3, len(holdout)
    assert len({n.meta["specialty"] for n in holdout}) >= 10
    encounters = Counter(n.meta["encounter"] for n in NOTES)
    assert encounters["inpatient"] >= 60 and encounters["ed"] >= 30, encounters


@pytest.mark.parametrize("note", NOTES, ids=IDS)
def test_synthetic_ip_ed_meta(note: CorpusNote) -> None:
    meta = note.meta
    assert meta["encounter"] in ENCOUNTERS
    assert (meta["encounter"] == "inpatient") == (note.setting == "inpatient")
    assert meta["specialty"] in SPECIALTIES
    assert meta["split"] in ("dev", "holdout")
    assert GUIDELINE_SECTION.search(meta["notes"]), "the reasons cite no guideline section"
    assert all(note.text[s.start : s.end].strip() for s in note.spans), "an evidence span is blank"


@pytest.mark.parametrize("note", NOTES, ids=IDS)
def test_synthetic_ip_ed_services_fit_the_encounter(note: CorpusNote) -> None:
    """Facility inpatient claims have no service lines; the other kinds carry the ones they bill."""
    encounter, em = note.meta["encounter"], _em_codes(note)
    units = note.meta.get("units", {})
    assert bool(em) == ("em" in note.meta), "E/M lines and meta.em come together"
    if encounter == "inpatient":
        assert not note.codes_of("CPT") and not note.codes_of("HCPCS"), "facility diagnosis codes only"
    elif encounter == "procedure":
        assert not em and note.codes_of("CPT"), "an infusion visit has administration lines and no visit code"
        for drug in note.codes_of("HCPCS"):
            if drug.startswith("J"):
                assert drug in units, f"drug {drug} without billing units"
    elif encounter in ("hospital", "observation"):
        assert em and all(HOSPITAL_EM.match(code) for code in em), em
    else:
        # README decision 4/20: a procedure that is the whole ED visit is reported without an E/M.
        assert em or note.codes_of("CPT"), "ED note without any service line"
        assert all(code.startswith(("9928", "9929")) for code in em), em
