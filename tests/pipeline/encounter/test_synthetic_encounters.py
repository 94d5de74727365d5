"""The encounter coder against the 40 synthetic notes and their expected claim code sets.

The default model runs over every note once (module fixture); each note then checks its full code
set (codes, roles, modifiers; the first-listed or principal diagnosis first), the diagnosis
pointers of every service line, that no forbidden code appears, the E/M basis and level, drug
and add-on units, and the physician queries (``corpora/synthetic/README.md`` describes the file
and the decisions it follows).

A note the general rules cannot produce with the default model is marked ``xfail(strict=True)``
with the reason; a strict xfail fails as soon as the note passes, so the list stays honest.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from corpora.format import CorpusNote, read_corpus

if TYPE_CHECKING:
    from pipeline.suggest import Suggester, SuggestionResult

SYNTHETIC = Path(__file__).resolve().parents[3] / "corpora" / "synthetic" / "encounters.jsonl"
NOT_SCORED = ("Y92", "Y93", "Y99")  # README decision 1: neither expected nor forbidden

XFAIL = {
    "synthetic-006-scaphoid-nonunion": (
        "no dictionary mention: the default model's term table has no term matching 'fracture of the "
        "waist (middle third) of the scaphoid', so S62.021K is never stated (only 'fracture' -> T14.8)"
    ),
    "synthetic-019-low-back-strain-ketorolac": (
        "the External Cause Index sends lifting to X50.0 only for 'heavy objects' or 'weights'; "
        "'lifting a 50 lb box' names neither, so the mechanism found is 'pulling, excessive' X50.9"
    ),
    "synthetic-027-hypertrophic-scar-sequela": (
        "'laceration from a kitchen knife' reaches no External Cause Index entry (W26.0 needs 'cut' or 'contact with')"
    ),
    "synthetic-028-foot-drop-sequela-afo": (
        "'thrown from a horse' has no External Cause Index entry (V80.010 sits under Accident, "
        "transport, animal-rider); the chief complaint's tripping (W18.40) is found instead"
    ),
    "synthetic-032-ed-forehead-laceration": (
        "the External Cause Index sends 'tripping over a rug, with fall' to W18.09; W01.190 (with "
        "subsequent striking against furniture) is indexed only under slipping"
    ),
    "synthetic-034-new-patient-hypertension-ecg": (
        "E/M pointers only: the expected line leaves out both family history codes while a fourth "
        "pointer is free; the general rule (every addressed diagnosis, at most four) adds Z83.3"
    ),
    "synthetic-035-derm-actinic-keratoses-and-biopsy-59": (
        "the destruction of actinic keratoses is found only by fuzzy similarity (never a claim "
        "line), so 17000/17003 and the 59 on 11102 are missing; 'nevus of the upper back' is not "
        "stated as 'trunk' (D22.5)"
    ),
}

NOTES = read_corpus(SYNTHETIC)


# The same causes, for the notes where they also change the E/M level or the units.
XFAIL_EM = {
    "synthetic-035-derm-actinic-keratoses-and-biopsy-59": XFAIL["synthetic-035-derm-actinic-keratoses-and-biopsy-59"],
}


def _cases(xfail: dict[str, str]) -> list[Any]:
    return [
        pytest.param(note.id, marks=pytest.mark.xfail(strict=True, reason=xfail[note.id]))
        if note.id in xfail
        else note.id
        for note in NOTES
    ]


@pytest.fixture(scope="module")
def results(suggester: Suggester) -> dict[str, SuggestionResult]:
    """Every synthetic note coded once, in batches by setting."""
    out: dict[str, SuggestionResult] = {}
    for setting in ("outpatient", "inpatient"):
        batch = [n for n in NOTES if (n.setting or "outpatient") == setting]
        for note, result in zip(batch, suggester.suggest_batch([n.text for n in batch], setting=setting), strict=True):
            out[note.id] = result
    return out


def _note(note_id: str) -> CorpusNote:
    return next(n for n in NOTES if n.id == note_id)


def _lines(result: SuggestionResult) -> list[Any]:
    return [ln for ln in result.code_set if not (ln.system == "ICD10CM" and ln.code.startswith(NOT_SCORED))]


def _forbidden(code: str, entry: str) -> bool:
    return code == entry or (entry.endswith(".-") and code.startswith(entry[:-2]))


@pytest.mark.slow
@pytest.mark.parametrize("note_id", _cases(XFAIL))
def test_synthetic_encounters_full_code_set(results: dict[str, SuggestionResult], note_id: str) -> None:
    note, result = _note(note_id), results[note_id]
    lines = _lines(result)
    expected = {(c.system, c.code, tuple(sorted(c.modifiers)), c.role) for c in note.codes}
    got = {(ln.system, ln.code, tuple(sorted(ln.modifiers)), ln.role) for ln in lines}
    assert got == expected, f"missing {sorted(expected - got)}, unexpected {sorted(got - expected)}"
    assert (lines[0].code, lines[0].role) == (note.codes[0].code, note.codes[0].role)
    exp_pointers = {(c.code, tuple(sorted(c.modifiers))): c.pointers for c in note.codes if c.system != "ICD10CM"}
    got_pointers = {
        (ln.code, tuple(sorted(ln.modifiers))): tuple(ln.pointers) for ln in lines if ln.system != "ICD10CM"
    }
    assert got_pointers == exp_pointers
    for ln in lines:
        assert not any(_forbidden(ln.code, f) for f in note.meta.get("forbidden", [])), ln.code


@pytest.mark.slow
@pytest.mark.parametrize("note_id", _cases(XFAIL_EM))
def test_synthetic_encounters_em_units_and_queries(results: dict[str, SuggestionResult], note_id: str) -> None:
    note, result = _note(note_id), results[note_id]
    em, expected_em = result.extra.get("em"), note.meta.get("em")
    if expected_em is None:
        assert em is None or em["code"] is None
    else:
        assert em is not None and em["code"] is not None
        assert em["basis"] == expected_em["basis"]
        if expected_em["basis"] == "time":
            assert em["minutes"] == expected_em["minutes"]
        else:
            assert em["mdm"] == expected_em["mdm"], em["elements"]
        assert em["patient"] == expected_em.get("patient")
        assert em["place"] == ("ed" if expected_em.get("place") == "ed" else "office")
    units = result.extra.get("units", {})
    for code, n in (note.meta.get("units") or {}).items():
        assert units.get(code, 1) == n, code
    queries = [s for s in result.suggestions if s.status == "query"]
    for q in note.meta.get("queries") or []:
        assert any(s.code.startswith(q["code_prefix"]) or q["code_prefix"].startswith(s.code) for s in queries)
        assert all(s.query for s in queries)
    if not note.meta.get("queries"):
        assert not [s for s in queries if s.rules and s.rules[0].id == "icd.query"]


XFAIL_RULES = {
    "synthetic-035-derm-actinic-keratoses-and-biopsy-59": XFAIL["synthetic-035-derm-actinic-keratoses-and-biopsy-59"],
}

# Rule ids of the corpus whose decision the engine records on the note's output under that id
# (icd.excludes1 is left out: most notes exercise it by a partner that is never documented).
RECORDED = (
    "icd.7th",
    "icd.code_first",
    "icd.use_additional",
    "icd.family_history",
    "icd.personal_history",
    "icd.query",
    "em.time",
    "em.mdm",
    "em.new_vs_established",
    "mod.25",
    "mod.59",
    "mod.26_tc",
    "mod.laterality",
    "proc.pointers",
)


@pytest.mark.slow
@pytest.mark.parametrize("note_id", _cases(XFAIL_RULES))
def test_synthetic_encounters_rules_are_recorded(results: dict[str, SuggestionResult], note_id: str) -> None:
    note, result = _note(note_id), results[note_id]
    ids = {r.id for s in result.suggestions if s.status in ("suggested", "query") for r in s.rules}
    missing = [rule for rule in note.meta.get("rules", []) if rule in RECORDED and rule not in ids]
    assert not missing, missing
    reasons = {x.reason for x in result.excluded}
    if "icd.uncertain.outpatient" in note.meta.get("rules", []):
        assert "uncertain" in reasons
    if "icd.uncertain.inpatient" in note.meta.get("rules", []):
        assert "icd.uncertain.inpatient" in ids
