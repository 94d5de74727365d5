"""Tests of cs_context: ConText assertions of mentions with the project's trigger rules."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc

from pipeline.errors import RuleFileError
from pipeline.nlp.components import cs_context, cs_sections, cs_sentences  # noqa: F401  (register factories)
from pipeline.nlp.components.context_rules import load_context_rules
from pipeline.nlp.components.cs_context import phrase_variants
from pipeline.nlp.extensions import MENTIONS, assertions_of
from pipeline.rulefile import read_rule_text

pytestmark = pytest.mark.filterwarnings(r"ignore:.*\[W036\]")


@pytest.fixture(scope="module")
def nlp() -> Language:
    pipeline = spacy.blank("en")
    pipeline.add_pipe("cs_sentences")
    pipeline.add_pipe("cs_context")
    pipeline.initialize()
    return pipeline


def annotate(nlp: Language, text: str, mentions: list[tuple[str, str]]) -> Doc:
    """Run the pipeline on ``text`` with mention spans for the given (phrase, kind) pairs.

    Mentions normally come from cs_mentions; here each phrase's first occurrence (any case)
    becomes a span labelled with its kind in upper case, as cs_mentions does.
    """
    doc = nlp.make_doc(text)
    spans = []
    for phrase, kind in mentions:
        start = text.lower().index(phrase.lower())
        span = doc.char_span(start, start + len(phrase), label=kind.upper())
        assert span is not None, phrase
        span._.cs_kind = kind
        spans.append(span)
    doc.spans[MENTIONS] = spans
    for _, component in nlp.pipeline:
        doc = component(doc)
    return doc


def _asserted(nlp: Language, text: str, phrase: str, kind: str = "diagnosis") -> set[str]:
    doc = annotate(nlp, text, [(phrase, kind)])  # keep the doc alive while reading its spans
    mention = doc.spans[MENTIONS][0]
    return {name for name, value in assertions_of(mention).items() if value}


NEG, HIST, FAM, HYP, UNC = "negated", "historical", "family", "hypothetical", "uncertain"


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        # negation
        ("Patient denies chest pain.", "chest pain", {NEG}),
        ("She denied fever.", "fever", {NEG}),
        ("No fracture seen.", "fracture", {NEG}),
        ("The ankle is not swollen.", "swollen", {NEG}),
        ("Sprain without fracture.", "fracture", {NEG}),
        ("Negative for pneumonia.", "pneumonia", {NEG}),
        ("No evidence of fracture.", "fracture", {NEG}),
        ("No signs of infection.", "infection", {NEG}),
        ("Free of infection.", "infection", {NEG}),
        ("Pulmonary embolism was ruled out.", "pulmonary embolism", {NEG}),
        ("Absence of edema.", "edema", {NEG}),
        ("Chest x-ray unremarkable for pneumonia.", "pneumonia", {NEG}),
        ("No family history of cancer.", "cancer", {NEG}),
        # rule out / r/o are pending (uncertain), not negated
        ("Rule out pulmonary embolism.", "pulmonary embolism", {UNC}),
        ("R/O pneumonia.", "pneumonia", {UNC}),
        ("Pulmonary embolism was not ruled out.", "pulmonary embolism", {UNC}),
        ("Evaluate for fracture.", "fracture", {UNC}),
        # historical
        ("Pneumonia, resolved.", "pneumonia", {HIST}),
        ("History of MI.", "MI", {HIST}),
        ("h/o DVT.", "DVT", {HIST}),
        ("Hx of asthma.", "asthma", {HIST}),
        ("s/p appendectomy with abdominal pain.", "appendectomy", {HIST}),
        ("s/p appendectomy with abdominal pain.", "abdominal pain", set()),
        ("s/p fall with ankle pain.", "ankle pain", set()),
        ("Status post ORIF of the ankle.", "ORIF", {HIST}),
        ("Previous stroke.", "stroke", {HIST}),
        ("Prior MI.", "MI", {HIST}),
        ("Past stroke, now stable.", "stroke", {HIST}),
        ("Fractured ankle in 2015.", "fractured ankle", {HIST}),
        ("Fracture of the ankle 3 years ago.", "Fracture", {HIST}),
        # family
        ("Mother had breast cancer.", "breast cancer", {FAM}),
        ("Father with diabetes.", "diabetes", {FAM}),
        ("Sister has asthma.", "asthma", {FAM}),
        ("His brother has epilepsy.", "epilepsy", {FAM}),
        ("Family history of colon cancer.", "colon cancer", {FAM}),
        ("FHx: diabetes.", "diabetes", {FAM}),
        ("Maternal grandmother with stroke.", "stroke", {FAM}),
        ("Diabetes in his mother.", "Diabetes", {FAM}),
        # hypothetical
        ("Return if chest pain develops.", "chest pain", {HYP}),
        ("Return for fever.", "fever", {HYP}),
        ("Call if vomiting.", "vomiting", {HYP}),
        ("In case of bleeding go to the ER.", "bleeding", {HYP}),
        ("Should she develop fever, call us.", "fever", {HYP}),
        ("Watch for infection.", "infection", {HYP}),
        ("If symptoms worsen with fever, return.", "fever", {HYP}),
        # uncertain
        ("Possible pneumonia.", "pneumonia", {UNC}),
        ("Probable UTI.", "UTI", {UNC}),
        ("Likely viral infection.", "viral infection", {UNC}),
        ("Suspected fracture.", "fracture", {UNC}),
        ("Suspicious for malignancy.", "malignancy", {UNC}),
        ("Concern for sepsis.", "sepsis", {UNC}),
        ("Cannot exclude fracture.", "fracture", {UNC}),
        ("Fracture cannot be excluded.", "Fracture", {UNC}),
        ("Questionable pneumonia.", "pneumonia", {UNC}),
        ("Sprain versus fracture.", "fracture", {UNC}),
        ("Sprain vs fracture.", "sprain", {UNC}),
        ("Differential includes appendicitis.", "appendicitis", {UNC}),
        ("Presumed sepsis.", "sepsis", {UNC}),
        ("Findings consistent with pneumonia.", "pneumonia", {UNC}),
        ("Findings compatible with fracture.", "fracture", {UNC}),
        ("It is not certain whether he has gout.", "gout", {UNC}),
        # pseudo-triggers must not fire
        ("No change in the mass.", "mass", set()),
        ("No increase in swelling.", "swelling", set()),
        ("Not only pain but swelling.", "pain", set()),
        ("Gram negative bacteremia.", "bacteremia", set()),
        ("No further bleeding.", "bleeding", set()),
        ("Ambulates without difficulty, ankle pain persists.", "ankle pain", set()),
        ("Mother reports that the child has fever.", "fever", set()),
        ("History of present illness: ankle pain.", "ankle pain", set()),
        ("Patient was seen by family medicine for asthma.", "asthma", set()),
        ("Cysts with daughter vesicles in the liver.", "cysts", set()),
        ("He has had pain in the past week.", "pain", set()),
        # terminations end a trigger's scope
        ("Negative for flu but positive for pneumonia.", "pneumonia", set()),
        ("No fever, which is reassuring, cough present.", "cough", set()),
        ("No fever, presents with cough.", "cough", set()),
        ("Denies fever, complains of cough.", "cough", set()),
        ("No fever, however cough is present.", "cough", set()),
        ("No fracture, although swelling persists.", "swelling", set()),
        # the scope is the sentence
        ("No fever.\nCough since Monday.", "cough", set()),
        ("No fever. Cough since Monday.", "cough", set()),
        ("Cough and fever.", "cough", set()),
    ],
)
def test_context_assertion_table(nlp: Language, text: str, phrase: str, expected: set[str]) -> None:
    assert _asserted(nlp, text, phrase) == expected


def test_context_each_mention_of_a_list_is_negated(nlp: Language) -> None:
    doc = annotate(
        nlp,
        "Denies fever, chills or cough.",
        [("fever", "symptom"), ("chills", "symptom"), ("cough", "symptom")],
    )
    assert [m._.is_negated for m in doc.spans[MENTIONS]] == [True, True, True]


@pytest.mark.parametrize("text", ["", "No fever.", "\n"])
def test_context_without_mentions(nlp: Language, text: str) -> None:
    doc = nlp(text)  # no mention span group at all
    assert MENTIONS not in doc.spans
    doc = annotate(nlp, text, [])
    assert list(doc.spans[MENTIONS]) == []


def test_context_no_phrase_implements_two_rules() -> None:
    """Spelled-out patterns must not collide: medspaCy keeps one of two equal matches."""
    rules = load_context_rules(*read_rule_text("context_rules.json"))
    owners: dict[str, set[str]] = defaultdict(set)
    tokenizer_nlp = spacy.blank("en")
    for rule in rules.rules:
        for literal, pattern in phrase_variants(tokenizer_nlp, rule.literal, rule.pattern):
            if pattern is None:
                owners[literal.lower()].add(rule.literal)
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}


def test_context_round_trip_to_disk(nlp: Language, tmp_path: Path) -> None:
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "cs_context" / "context_rules.json").is_file()
    text = "Denies fever. History of MI. Possible pneumonia. Mother had cancer. Return if pain."
    mentions = [
        ("fever", "symptom"),
        ("MI", "diagnosis"),
        ("pneumonia", "diagnosis"),
        ("cancer", "diagnosis"),
        ("pain", "symptom"),
    ]
    doc_before, doc_after = annotate(nlp, text, mentions), annotate(loaded, text, mentions)
    before = [assertions_of(m) for m in doc_before.spans[MENTIONS]]
    after = [assertions_of(m) for m in doc_after.spans[MENTIONS]]
    assert after == before
    assert [sum(a.values()) for a in after] == [1, 1, 1, 1, 1]


def _rules_file(tmp_path: Path, rules: list[dict]) -> Path:
    path = tmp_path / "context_rules.json"
    body = ",\n".join(json.dumps(r) for r in rules)
    path.write_text(
        '{\n"schema": "codesuggest.context-rules/1",\n"context_rules": [\n' + body + "\n]\n}\n",
        "utf-8",
    )
    return path


def test_context_allowed_types_limit_a_trigger_to_mention_kinds(tmp_path: Path) -> None:
    path = _rules_file(
        tmp_path,
        [
            {
                "literal": "declined",
                "category": "NEGATED_EXISTENCE",
                "direction": "FORWARD",
                "allowed_types": ["procedure"],
            }
        ],
    )
    pipeline = spacy.blank("en")
    pipeline.add_pipe("cs_sentences")
    pipeline.add_pipe("cs_context")
    pipeline.config["initialize"]["components"]["cs_context"] = {"rules_path": str(path)}
    pipeline.initialize()
    doc = annotate(
        pipeline,
        "Patient declined surgery for pain.",
        [("surgery", "procedure"), ("pain", "symptom")],
    )
    assert [m._.is_negated for m in doc.spans[MENTIONS]] == [True, False]


GOOD = {"literal": "denies", "category": "NEGATED_EXISTENCE", "direction": "FORWARD"}


@pytest.mark.parametrize(
    ("bad_rule", "message"),
    [
        ({**GOOD, "literal": "no", "scope": 3}, "unknown key 'scope'"),
        ({**GOOD, "literal": "no", "category": "NEGATED"}, "unknown category 'NEGATED'"),
        ({**GOOD, "literal": "no", "direction": "SIDEWAYS"}, "unknown direction 'SIDEWAYS'"),
        ({"literal": "no", "category": "NEGATED_EXISTENCE"}, "missing key 'direction'"),
        ({**GOOD, "literal": "no", "max_scope": 0}, "max_scope: Input should be greater than 0"),
        ({**GOOD, "literal": "no", "allowed_types": ["disease"]}, "unknown allowed_types 'disease'"),
        (
            {**GOOD, "literal": "no", "allowed_types": ["drug"], "excluded_types": ["supply"]},
            "not both",
        ),
        ({**GOOD, "literal": "no", "terminated_by": ["FAMILIAL"]}, "unknown terminated_by 'FAMILIAL'"),
        ({**GOOD, "literal": "DENIES"}, "duplicate literal 'DENIES'"),
        ({**GOOD, "literal": "no", "pattern": [{"LOWER": {"IN": "no"}}]}, "bad token pattern"),
    ],
)
def test_context_bad_rule_is_rejected_with_file_line_and_index(tmp_path: Path, bad_rule: dict, message: str) -> None:
    path = _rules_file(tmp_path, [GOOD, bad_rule])
    component: Any = spacy.blank("en").add_pipe("cs_context")
    with pytest.raises(RuleFileError, match=rf"context_rules\.json: line 5: context_rules\[1\][.:].*{message}"):
        component.initialize(rules_path=str(path))


def test_context_needs_sentences() -> None:
    pipeline = spacy.blank("en")
    component = pipeline.add_pipe("cs_context")
    pipeline.initialize()
    doc = pipeline.make_doc("No fever.")
    doc.spans[MENTIONS] = [doc[1:2]]
    with pytest.raises(ValueError, match="sentence boundaries"):
        component(doc)
