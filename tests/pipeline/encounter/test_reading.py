"""How the encounter rules read a note: statements, term coverage and assertions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pipeline.encounter.reading import Assertions, Coverage, NoteReader, load_reading_rules, read_mentions
from pipeline.nlp.textnorm import Normalizer, WordGroups

if TYPE_CHECKING:
    from pipeline.suggest import Suggester

RULES = load_reading_rules()
READER = NoteReader(RULES)
COVERAGE = Coverage(Normalizer(WordGroups.default()), RULES)


def _statements(text: str) -> list[str]:
    view = READER.read(text)
    return [text[s.start : s.end] for s in view.statements]


@pytest.mark.parametrize(
    ("text", "statements"),
    [
        (  # an assessment-and-plan item: its first sentence, cut before the comment
            "HPI: knee pain.\nASSESSMENT/PLAN:\n1. Sprain of the left knee, initial encounter. Fitted with a brace.\n"
            "2. Hypertension - continue lisinopril.\nReturn in 2 weeks.\n",
            ["Sprain of the left knee, initial encounter", "Hypertension"],
        ),
        (  # a pure diagnostic heading: every sentence, clauses split at ';'
            "Diagnoses: Laceration of the left forearm; laceration of the left hand. Immunization given.\nPlan: x.",
            ["Laceration of the left forearm", "laceration of the left hand", "Immunization given"],
        ),
        (  # admission diagnoses are working diagnoses, not final ones
            "Admission diagnosis: chest pain, rule out ACS.\nDischarge diagnoses:\n1. GERD.\n2. Hyperlipidemia.\n"
            "History: 57-year-old man.",
            ["GERD", "Hyperlipidemia"],
        ),
        (  # an inline heading after a sentence opens a region
            "Addendum: culture grew E. coli. Final diagnosis: acute cystitis due to E. coli. Patient informed.",
            ["acute cystitis due to E. coli"],
        ),
        ("CC: cough.\nExam: clear lungs.\n", []),
    ],
)
def test_encounter_text_statements(text: str, statements: list[str]) -> None:
    assert _statements(text) == statements


def test_encounter_text_family_history_region() -> None:
    view = READER.read("HPI: well.\nFamily history: mother had breast cancer.\nAssessment: lump.")
    kinds = [(r.heading, r.kind) for r in view.regions]
    assert kinds == [("HPI", "other"), ("Family history", "family"), ("Assessment", "diagnostic")]


@pytest.mark.parametrize(
    ("term", "source", "clause", "covered"),
    [
        (
            "Sprain > ankle > talofibular ligament",
            "index",
            "Sprain of the anterior talofibular ligament of the ankle",
            True,
        ),
        ("Sprain > ankle > talofibular ligament", "index", "Sprain of the right ankle", False),
        ("Fall, falling > from, off, out of > stairs, steps", "index", "fell down the steps", False),
        ("Nicotine dependence, cigarettes, uncomplicated", "title", "Nicotine dependence, cigarettes", True),
        ("Other hyperlipidemia", "title", "Hyperlipidemia", False),
        (
            "Personal history of adenomatous and serrated colon polyps",
            "title",
            "Personal history of adenomatous colon polyps",
            True,
        ),
        (
            "Disease, diseased > kidney > chronic > stage 2",
            "index",
            "chronic kidney disease stage 3b, due to type 2 diabetes",
            False,
        ),
        ("Diabetes, diabetic > type 2", "index", "Type 2 diabetes mellitus", True),
        ("Sequelae > infarction > cerebral > dysphagia", "index", "dysphagia due to old cerebral infarction", True),
        ("Neoplasm, neoplastic > colon", "neoplasm", "treatment of colon cancer", True),
        ("status colectomy", "fuzzy", "Status post right hemicolectomy", True),
        ("elevated, elevation ast", "fuzzy", "elevation", False),
        ("Old", "index", "old injury", False),
    ],
)
def test_encounter_text_coverage(term: str, source: str, clause: str, covered: bool) -> None:
    words = COVERAGE.words(clause)
    assert COVERAGE.covered(term, source, words, COVERAGE.raw_words(clause)) is covered


@pytest.mark.parametrize(
    ("text", "mention", "flag", "expected"),
    [
        ("Assessment: Acute cystitis without hematuria.", "Acute cystitis without hematuria", "negated", False),
        ("Assessment: Acute cystitis without hematuria.", "hematuria", "negated", True),
        ("Final impression: Chest pain. NSTEMI ruled out.", "NSTEMI", "negated", True),
        ("Assessment: Fracture excluded clinically.", "Fracture", "negated", True),
        ("Assessment: Probable aspiration pneumonia.", "aspiration pneumonia", "uncertain", True),
        ("Assessment: Rectal bleeding, likely from internal hemorrhoids.", "Rectal bleeding", "uncertain", False),
        ("Assessment: Rectal bleeding, likely from internal hemorrhoids.", "internal hemorrhoids", "uncertain", True),
        ("Plan: Short arm cast applied by me, well padded, fingers free.", "Short arm cast applied", "negated", False),
    ],
)
def test_encounter_text_assertions(suggester: Suggester, text: str, mention: str, flag: str, expected: bool) -> None:
    doc = suggester.nlp(text)
    view = READER.read(text)
    mentions = [m for m in read_mentions(doc, COVERAGE.normalizer.key) if m.text == mention]
    assert mentions, [m.text for m in read_mentions(doc, COVERAGE.normalizer.key)]
    assert Assertions(doc, view, RULES).of(mentions[0])[flag] is expected
