"""The encounter coder as a whole: outcome shape, statuses, rule files from a folder, cost."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pipeline.encounter.coder import RULES_FOLDER, EncounterCoder, encounter_rule_files
from pipeline.errors import RuleFileError

if TYPE_CHECKING:
    from pipeline.suggest import Suggester

ANKLE = (
    "OFFICE VISIT - ESTABLISHED PATIENT\n"
    "HPI: She slipped on a wet floor and fell this morning, twisting the right ankle. No numbness.\n"
    "IMAGING: X-ray of the right ankle, three views, taken and read by me today: no fracture.\n"
    "ASSESSMENT/PLAN:\n1. Sprain of the right ankle, initial encounter. Fitted with an off-the-shelf stirrup "
    "ankle brace with rigid shells, right ankle. Ibuprofen over the counter.\n"
)
HEMORRHOIDS = "OFFICE VISIT\nAssessment: Rectal bleeding, likely from internal hemorrhoids.\n"
SYNTHETIC = Path(__file__).resolve().parents[3] / "corpora" / "synthetic" / "encounters.jsonl"


def test_encounter_outcome_statuses_and_code_set(suggester: Suggester) -> None:
    result = suggester.suggest(ANKLE)
    assert [(ln.code, ln.role, ln.modifiers) for ln in result.code_set] == [
        ("S93.401A", "first-listed", []),
        ("W01.0XXA", "external-cause", []),
        ("99213", "em", ["25"]),
        ("73610", "procedure", ["RT"]),
        ("L4350", "supply", ["RT"]),
    ]
    suggested = {(s.system, s.code) for s in result.suggestions if s.status == "suggested"}
    claim = {(ln.system, ln.code) for ln in result.code_set}
    assert claim <= suggested
    # Outside the claim, "suggested" means the model's calibrated score reached its threshold.
    assert all(s.score >= suggester.threshold for s in result.suggestions if (s.system, s.code) in suggested - claim)
    assert all(s.status in ("suggested", "consider", "query") for s in result.suggestions)
    assert [s.rank for s in result.suggestions] == list(range(1, len(result.suggestions) + 1))
    assert {"negated"} <= {x.reason for x in result.excluded}
    em = result.extra["em"]
    assert em["basis"] == "mdm" and em["mdm"] == "low"
    document = json.loads(json.dumps(result.to_dict()))
    sprain = next(s for s in document["suggestions"] if s["code"] == "S93.401A")
    assert {r["id"] for r in sprain["rules"]} >= {"icd.7th", "icd.laterality"}


def test_encounter_codes_proposed_only_by_the_model_never_reach_the_claim(suggester: Suggester) -> None:
    doc = suggester.nlp("OFFICE VISIT\nAssessment: Essential hypertension.\n")
    ranked = [("E78.5", 0.99), ("I10", 0.4), ("R51.9", 0.2)]
    outcome = suggester.encounter.code(doc, ranked, threshold=0.5, setting="outpatient")
    by_code = {s.code: s for s in outcome.suggestions}
    assert by_code["I10"].status == "suggested"  # documented: in the claim whatever its score
    assert by_code["E78.5"].status == "suggested"  # above the model's threshold, but undocumented
    assert by_code["R51.9"].status == "consider"
    claim = {ln.code for ln in outcome.code_set}
    assert "I10" in claim and "E78.5" not in claim and "R51.9" not in claim
    assert [s.code for s in outcome.suggestions if s.system == "ICD10CM"][:2] == ["E78.5", "I10"]


def test_encounter_header_code_becomes_a_query(suggester: Suggester) -> None:
    doc = suggester.nlp("OFFICE VISIT\nAssessment: Essential hypertension.\n")
    outcome = suggester.encounter.code(doc, [("S93.40", 0.9)], threshold=0.5, setting="outpatient")
    query = next(s for s in outcome.suggestions if s.code == "S93.40")
    assert query.status == "query" and "S93.401" in (query.query or "")
    assert query.rules[0].id == "icd.billable"


def _packaged_rules(folder: Path) -> Path:
    for rel, text in encounter_rule_files().items():
        (folder / Path(rel).name).write_text(text, "utf-8")
    return folder


def test_encounter_rules_come_from_a_folder(suggester: Suggester, tmp_path: Path) -> None:
    default = suggester.encounter
    assert not [c for c in (ln.code for ln in suggester.suggest(HEMORRHOIDS).code_set) if c.startswith("K64")]
    _packaged_rules(tmp_path)
    data = json.loads(resources.files("pipeline.resources").joinpath("encounter_reading.json").read_text("utf-8"))
    for cue in data["assertion_cues"]:
        cue["phrases"] = [p for p in cue["phrases"] if "likely" not in p]
    (tmp_path / "encounter_reading.json").write_text(json.dumps(data), "utf-8")
    coder = EncounterCoder(suggester.kb, rules_dir=tmp_path)
    outcome = coder.code(suggester.nlp(HEMORRHOIDS), [], threshold=0.5, setting="outpatient")
    assert [c for c in (ln.code for ln in outcome.code_set) if c.startswith("K64")]
    assert default.reading is not coder.reading


def test_encounter_rejects_a_broken_rule_folder(suggester: Suggester, tmp_path: Path) -> None:
    _packaged_rules(tmp_path)
    (tmp_path / "encounter_em.json").write_text('{"schema": "codesuggest.encounter-em/1"}', "utf-8")
    with pytest.raises(RuleFileError, match=r"encounter_em\.json: line 1: missing key 'report'"):
        EncounterCoder(suggester.kb, rules_dir=tmp_path)


def test_encounter_rejects_a_rule_folder_missing_a_file(suggester: Suggester, tmp_path: Path) -> None:
    _packaged_rules(tmp_path)
    (tmp_path / "encounter_services.json").unlink()
    with pytest.raises(RuleFileError, match=r"encounter_services\.json: missing"):
        EncounterCoder(suggester.kb, rules_dir=tmp_path)


def test_encounter_rules_of_the_model_are_its_own_copies(suggester: Suggester) -> None:
    """The model reads the encounter rules saved in it, hashed in its manifest, not the package's."""
    folder = suggester.model_dir / RULES_FOLDER
    assert suggester.encounter.reading.source == str(folder / "encounter_reading.json")
    saved = {f"{RULES_FOLDER}/{p.name}" for p in folder.iterdir()}
    assert saved == set(encounter_rule_files()) and saved <= set(suggester.manifest.files)


def test_encounter_patient_cues_and_family_headings_are_the_pipelines(suggester: Suggester) -> None:
    """Each cue list has one owner: the E/M reads the attribute rules' patient cues, the note
    reader the section rules' family-history headings."""
    attributes = suggester.nlp.get_pipe("cs_attributes").rules  # type: ignore[attr-defined]
    sections = suggester.nlp.get_pipe("cs_sections").rules  # type: ignore[attr-defined]
    assert suggester.encounter.em.rules.new.phrases == attributes.encounter.new_patient
    assert suggester.encounter.em.rules.established.phrases == attributes.encounter.established_patient
    assert suggester.encounter.reading.family_headings.phrases == sections.literals("family_history")
    assert suggester.encounter.reader.read("FHx: mother with diabetes.\n").regions[0].kind == "family"
