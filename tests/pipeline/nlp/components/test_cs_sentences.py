"""Tests of cs_sentences: the clinical sentence splitter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import spacy
from spacy.language import Language

from pipeline.errors import RuleFileError
from pipeline.nlp.components import cs_sentences  # noqa: F401  (registers cs_sentences)


@pytest.fixture(scope="module")
def nlp() -> Language:
    pipeline = spacy.blank("en")
    pipeline.add_pipe("cs_sentences")
    pipeline.initialize()
    return pipeline


def _sentences(nlp: Language, text: str) -> list[str]:
    return [s.text.strip() for s in nlp(text).sents if s.text.strip()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # abbreviations with periods do not end a sentence
        (
            "Seen by Dr. Smith today. He is well.",
            ["Seen by Dr. Smith today.", "He is well."],
        ),
        (
            "Ibuprofen 600 mg p.o. t.i.d. p.r.n. Pain improved.",
            ["Ibuprofen 600 mg p.o. t.i.d. p.r.n. Pain improved."],
        ),
        (
            "Mild swelling, e.g. Grade 1. Ice applied.",
            ["Mild swelling, e.g. Grade 1.", "Ice applied."],
        ),
        ("Sprain vs. Fracture considered.", ["Sprain vs. Fracture considered."]),
        ("Mrs. Jones and Mr. Lee at St. Mary.", ["Mrs. Jones and Mr. Lee at St. Mary."]),
        ("Seen at 3 p.m. Today he is well.", ["Seen at 3 p.m. Today he is well."]),
        # "No." and "Fig." only before a number; "No." as an answer ends the sentence
        (
            "Room No. 5 was used. See Fig. 2 for the film.",
            ["Room No. 5 was used.", "See Fig. 2 for the film."],
        ),
        ("Any fever? No. Chills? Yes!", ["Any fever?", "No.", "Chills?", "Yes!"]),
        # initials
        ("Reviewed by J. Smith in clinic.", ["Reviewed by J. Smith in clinic."]),
        # decimals and units
        ("Temp 38.5 C today. HR 90.", ["Temp 38.5 C today.", "HR 90."]),
        (
            "The wound measured 2.5 cm. It was closed.",
            ["The wound measured 2.5 cm.", "It was closed."],
        ),
        # semicolons never split
        ("Ankle sprain; no fracture; ice and rest.", ["Ankle sprain; no fracture; ice and rest."]),
        # line breaks, blank lines, Windows line ends
        ("Ankle pain\nNo fracture\n\nPlan ice", ["Ankle pain", "No fracture", "Plan ice"]),
        ("Ankle pain.\r\nNo fracture.\r\n\r\nIce.", ["Ankle pain.", "No fracture.", "Ice."]),
        # no punctuation at all: the lines are the sentences (short lines are never joined)
        (
            "pain in ankle\nswelling noted\nno fever",
            ["pain in ankle", "swelling noted", "no fever"],
        ),
        # a soft wrap inside a long sentence joins the lines
        (
            "The patient was admitted to the hospital with a long history of\nsevere pain. She was treated.",
            [
                "The patient was admitted to the hospital with a long history of\nsevere pain.",
                "She was treated.",
            ],
        ),
        # a heading line is not a soft wrap even when the next line is lower case
        (
            "PAST MEDICAL HISTORY OF THE PATIENT TODAY\nhypertension",
            ["PAST MEDICAL HISTORY OF THE PATIENT TODAY", "hypertension"],
        ),
        # lists and bullets
        ("1. Sprain of ankle\n2) Abrasion of knee", ["1. Sprain of ankle", "2) Abrasion of knee"]),
        (
            "Diagnoses: 1. Sprain of ankle 2. Fracture of wrist",
            ["Diagnoses:", "1. Sprain of ankle", "2. Fracture of wrist"],
        ),
        (
            "- ice\n* rest\n• elevation • compression",
            ["- ice", "* rest", "• elevation", "• compression"],
        ),
        # inline headings
        (
            "HPI: fell today. ASSESSMENT/PLAN: Sprain of R ankle. Plan: ice",
            ["HPI: fell today.", "ASSESSMENT/PLAN: Sprain of R ankle.", "Plan: ice"],
        ),
        ("Sprain of ankle Plan: rest", ["Sprain of ankle", "Plan: rest"]),
        ("Past Medical History: asthma", ["Past Medical History: asthma"]),
        # all capitals
        (
            "PATIENT DENIES FEVER. NO CHILLS. SEEN BY DR. LEE.",
            ["PATIENT DENIES FEVER.", "NO CHILLS.", "SEEN BY DR. LEE."],
        ),
        # non-ASCII
        (
            "fiebre 38,5 °C. Ménière's disease was seen.",
            ["fiebre 38,5 °C.", "Ménière's disease was seen."],
        ),
        ('He said "no." Then he left.', ['He said "no."', "Then he left."]),
    ],
)
def test_sentences_split_table(nlp: Language, text: str, expected: list[str]) -> None:
    assert _sentences(nlp, text) == expected


@pytest.mark.parametrize("text", ["", " ", "\n\n", "\r\n"])
def test_sentences_empty_or_blank_doc(nlp: Language, text: str) -> None:
    doc = nlp(text)
    assert len(list(doc.sents)) == (1 if len(doc) else 0)


def test_sentences_whitespace_stays_with_previous_sentence(nlp: Language) -> None:
    doc = nlp("\n\nAnkle pain.\n\nNo fracture.\n")
    assert [s.text for s in doc.sents] == ["\n\nAnkle pain.\n\n", "No fracture.\n"]


def test_sentences_round_trip_to_disk(nlp: Language, tmp_path: Path) -> None:
    text = "HPI: fell. ASSESSMENT/PLAN: Sprain. Triage: seen.\nDr. Smith 3.5 mg."
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "cs_sentences" / "section_rules.json").is_file()
    assert _sentences(loaded, text) == _sentences(nlp, text)


def test_sentences_headings_come_from_the_rule_file(tmp_path: Path) -> None:
    rules = {
        "schema": "codesuggest.section-rules/1",
        "section_rules": [{"category": "hpi", "literal": "triage note"}],
    }
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules), encoding="utf-8")
    custom = spacy.blank("en")
    custom.add_pipe("cs_sentences")
    custom.config["initialize"]["components"]["cs_sentences"] = {"rules_path": str(path)}
    custom.initialize()
    assert _sentences(custom, "Ankle pain Triage Note: seen") == ["Ankle pain", "Triage Note: seen"]
    restored = spacy.blank("en")
    restored.add_pipe("cs_sentences")
    saved: Any = custom.get_pipe("cs_sentences")
    saved.to_disk(tmp_path / "component")
    fresh: Any = restored.get_pipe("cs_sentences")
    fresh.from_disk(tmp_path / "component")
    assert _sentences(restored, "Ankle pain Triage Note: seen") == [
        "Ankle pain",
        "Triage Note: seen",
    ]


def test_sentences_bad_rule_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{"schema": "codesuggest.section-rules/1", "section_rules": [{"literal": "x"}]}', "utf-8")
    pipeline = spacy.blank("en")
    pipeline.add_pipe("cs_sentences")
    with pytest.raises(RuleFileError, match=r"rules\.json: line 1: section_rules\[0\]: missing key 'category'"):
        component: Any = pipeline.get_pipe("cs_sentences")
        component.initialize(nlp=pipeline, rules_path=str(path))
