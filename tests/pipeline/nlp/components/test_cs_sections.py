"""Tests of cs_sections: headings matched by medspaCy's Sectionizer with the project's rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc

from pipeline.errors import RuleFileError
from pipeline.nlp.components import cs_sections, cs_sentences  # noqa: F401  (register the factories)
from pipeline.nlp.components.section_rules import SECTION_CATEGORIES, load_section_rules
from pipeline.nlp.extensions import MENTIONS
from pipeline.rulefile import read_rule_text

# Every heading is a phrase, so medspaCy's token Matcher is empty; spaCy warns about that.
pytestmark = pytest.mark.filterwarnings(r"ignore:.*\[W036\]")


@pytest.fixture(scope="module")
def nlp() -> Language:
    pipeline = spacy.blank("en")
    pipeline.add_pipe("cs_sentences")
    pipeline.add_pipe("cs_sections")
    pipeline.initialize()
    return pipeline


def _sections(doc: Doc) -> list[tuple[str, str]]:
    return [(doc.text[a:b], category) for a, b, category in doc._.cs_section_spans]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # title case, ALL CAPS, lower case, with and without the colon
        ("Chief Complaint: ankle pain", [("Chief Complaint: ankle pain", "chief_complaint")]),
        ("HISTORY OF PRESENT ILLNESS: fell", [("HISTORY OF PRESENT ILLNESS: fell", "hpi")]),
        (
            "past medical history: asthma",
            [("past medical history: asthma", "past_medical_history")],
        ),
        ("Assessment\nsprain", [("Assessment\nsprain", "assessment")]),
        ("PLAN\nice", [("PLAN\nice", "plan")]),
        # inline heading on the same line as its content
        (
            "ASSESSMENT/PLAN: Sprain of R ankle",
            [("ASSESSMENT/PLAN: Sprain of R ankle", "assessment_plan")],
        ),
        ("A/P: sprain", [("A/P: sprain", "assessment_plan")]),
        ("Assessment & Plan: sprain", [("Assessment & Plan: sprain", "assessment_plan")]),
        # after a sentence end on the same line
        ("Fell today. Plan: ice", [("Plan: ice", "plan")]),
        # Windows line ends
        (
            "HPI: fell\r\nPMH:\r\nasthma\r\nFHx: diabetes",
            [
                ("HPI: fell", "hpi"),
                ("PMH:\r\nasthma", "past_medical_history"),
                ("FHx: diabetes", "family_history"),
            ],
        ),
        # bulleted heading
        (
            "- Meds: aspirin\n- Allergies: NKDA",
            [("Meds: aspirin", "medications"), ("Allergies: NKDA", "allergies")],
        ),
        # the longest heading wins
        ("Discharge Diagnoses: sprain", [("Discharge Diagnoses: sprain", "discharge_diagnoses")]),
        # not headings: inside a sentence, or without colon and not alone on the line
        ("The labs showed the following results: anemia.", []),
        ("Plan to follow up in two weeks.", []),
        ("PE was ruled out by CT.", []),
        ("Exam was normal.", []),
        # an inline heading's section ends with its line (and the lines that continue it)
        (
            "Family history: mother with diabetes.\nThe patient is well.",
            [("Family history: mother with diabetes.", "family_history")],
        ),
        (
            "A/P: sprain.\n- ice\n1. rest\nThe patient left.",
            [("A/P: sprain.\n- ice\n1. rest", "assessment_plan")],
        ),
        # a heading alone on its line runs to the next heading
        (
            "PAST MEDICAL HISTORY\nAsthma\nDiabetes\nSOCIAL HISTORY\nNo tobacco",
            [
                ("PAST MEDICAL HISTORY\nAsthma\nDiabetes", "past_medical_history"),
                ("SOCIAL HISTORY\nNo tobacco", "social_history"),
            ],
        ),
    ],
)
def test_sections_headings_table(nlp: Language, text: str, expected: list[tuple[str, str]]) -> None:
    assert _sections(nlp(text)) == expected


def _first_literal(category: str) -> str:
    rules = load_section_rules(*read_rule_text("section_rules.json"))
    return next(rule.literal for rule in rules.rules if rule.category == category)


@pytest.mark.parametrize("category", SECTION_CATEGORIES)
def test_sections_every_category_has_a_heading(nlp: Language, category: str) -> None:
    literal = _first_literal(category)
    doc = nlp(f"Intro line.\n{literal.upper()}: some content here")
    assert doc._.cs_section_spans[-1][2] == category
    assert doc[0]._.cs_section is None  # text before any heading has no section
    assert doc[-1]._.cs_section == category


def test_sections_mentions_get_their_first_tokens_section(nlp: Language) -> None:
    text = "Pain today.\nFamily history: diabetes mellitus."
    doc = nlp.make_doc(text)
    start = text.index("diabetes")
    first = doc.char_span(0, 4, label="SYMPTOM")
    second = doc.char_span(start, start + len("diabetes mellitus"), label="DIAGNOSIS")
    assert first is not None and second is not None
    doc.spans[MENTIONS] = [first, second]
    for _, component in nlp.pipeline:
        doc = component(doc)
    assert [m._.cs_section for m in doc.spans[MENTIONS]] == [None, "family_history"]


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_sections_empty_doc(nlp: Language, text: str) -> None:
    doc = nlp(text)
    assert doc._.cs_section_spans == []


def test_sections_round_trip_to_disk(nlp: Language, tmp_path: Path) -> None:
    text = "CC: pain\nHPI: fell.\nPAST MEDICAL HISTORY\nasthma\nA/P: sprain"
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "cs_sections" / "section_rules.json").is_file()
    assert _sections(loaded(text)) == _sections(nlp(text))
    assert [t._.cs_section for t in loaded(text)] == [t._.cs_section for t in nlp(text)]


def _write(tmp_path: Path, rules: list[dict]) -> Path:
    path = tmp_path / "section_rules.json"
    lines = ",\n".join(json.dumps(r) for r in rules)
    path.write_text(
        '{\n"schema": "codesuggest.section-rules/1",\n"section_rules": [\n' + lines + "\n]\n}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("bad_rule", "message"),
    [
        ({"category": "hpi", "literal": "hx", "colour": "red"}, "unknown key 'colour'"),
        ({"category": "history", "literal": "hx"}, "unknown category 'history'"),
        ({"category": "hpi"}, "needs a literal or a pattern"),
        ({"category": "hpi", "literal": "x", "pattern": [{"NOPE": "x"}]}, "bad token pattern"),
        ({"category": "hpi", "literal": "PLAN"}, "duplicate heading 'plan'"),
        ({"category": "hpi", "literal": "x", "parents": ["nowhere"]}, "unknown parents"),
    ],
)
def test_sections_bad_rule_is_rejected_with_file_line_and_index(tmp_path: Path, bad_rule: dict, message: str) -> None:
    path = _write(tmp_path, [{"category": "plan", "literal": "plan"}, bad_rule])
    component: Any = spacy.blank("en").add_pipe("cs_sections")
    with pytest.raises(RuleFileError, match=rf"section_rules\.json: line 5: section_rules\[1\][.:] ?.*{message}"):
        component.initialize(rules_path=str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "line 1: not valid JSON"),
        ('{"schema": "other/1", "section_rules": []}', "expected schema"),
        (
            '{"schema": "codesuggest.section-rules/1", "extra": 1,'
            ' "section_rules": [{"category": "hpi", "literal": "hx"}]}',
            "unknown key 'extra'",
        ),
    ],
)
def test_sections_bad_file_is_rejected(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    component: Any = spacy.blank("en").add_pipe("cs_sections")
    with pytest.raises(RuleFileError, match=message):
        component.initialize(rules_path=str(path))


def test_sections_custom_rules_path(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"category": "hpi", "literal": "triage note"}])
    pipeline = spacy.blank("en")
    pipeline.add_pipe("cs_sentences")
    pipeline.add_pipe("cs_sections")
    pipeline.config["initialize"]["components"]["cs_sections"] = {"rules_path": str(path)}
    pipeline.initialize()
    assert _sections(pipeline("TRIAGE NOTE: fell\nHPI: none")) == [("TRIAGE NOTE: fell", "hpi")]


def test_sections_uninitialized_component_says_so() -> None:
    component: Any = spacy.blank("en").add_pipe("cs_sections")
    with pytest.raises(ValueError, match="initialize"):
        component(spacy.blank("en").make_doc("Plan: rest"))
