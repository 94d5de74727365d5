"""cs_mentions and cs_candidates on a small hand-made term table, and their to_disk round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy
from spacy.language import Language

from pipeline.nlp.candidates import CodeNode, CodeTree
from pipeline.nlp.extensions import MENTIONS
from pipeline.nlp.terms import Term, TermTable
from pipeline.nlp.textnorm import Normalizer, WordGroups

GROUPS = WordGroups.default()
NORM = Normalizer(GROUPS)


def _term(text: str, code: str, source: str = "index", kind: str = "diagnosis", **kw: object) -> Term:
    keys = tuple(sorted(NORM.required_keys(text.replace(">", " "))))
    return Term(keys, code, "ICD10CM", source, kind, text, **kw)  # type: ignore[arg-type]


TERMS = [
    _term("Sprain > ankle", "S93.40", incomplete=True),
    _term("Pain", "R52", kind="symptom"),
    _term("Pain > chest", "R07.9", kind="symptom"),
    _term("hypertension", "I10", source="lexicon"),
    _term("chronic obstructive pulmonary disease", "J44.9", source="title"),
    Term(("ms",), "G35.D", "ICD10CM", "lexicon", "diagnosis", "MS", case_sensitive=True, surface="MS"),
]


def _node(children: tuple[str, ...], text: str, billable: bool, side: str | None = None) -> CodeNode:
    return CodeNode(
        children,
        frozenset(NORM.required_keys(text)),
        side,
        "unspecified" in text,
        False,
        False,
        billable,
        None if billable or children else 0,
    )


TREE = CodeTree(
    {
        "S93.40": _node(("S93.401", "S93.402", "S93.409"), "Sprain of unspecified ligament of ankle", False),
        "S93.401": _node((), "Sprain of unspecified ligament of right ankle", False, "right"),
        "S93.402": _node((), "Sprain of unspecified ligament of left ankle", False, "left"),
        "S93.409": _node((), "Sprain of unspecified ligament of unspecified ankle", False),
        "R52": _node((), "Pain, unspecified", True),
        "R07.9": _node((), "Chest pain, unspecified", True),
        "I10": _node((), "Essential (primary) hypertension", True),
        "J44.9": _node((), "Chronic obstructive pulmonary disease, unspecified", True),
        "G35.D": _node((), "Multiple sclerosis, unspecified", True),
    },
    [{"A": "initial encounter", "D": "subsequent encounter", "S": "sequela"}],
    set(),
)


@pytest.fixture
def nlp() -> Language:
    import scispacy.abbreviation  # noqa: F401

    from pipeline.nlp.components import cs_candidates, cs_mentions  # noqa: F401

    nlp = spacy.blank("en")
    nlp.add_pipe("cs_sentences")
    nlp.add_pipe("abbreviation_detector", name="abbreviations")
    mentions = nlp.add_pipe("cs_mentions", config={"fuzzy": False})
    nlp.add_pipe("cs_attributes")
    candidates = nlp.add_pipe("cs_candidates")
    mentions.set_table(TermTable(TERMS), GROUPS)  # type: ignore[attr-defined]
    candidates.tree = TREE  # type: ignore[attr-defined]
    nlp.get_pipe("cs_sentences").initialize(nlp=nlp)  # type: ignore[attr-defined]
    nlp.get_pipe("cs_attributes").initialize(nlp=nlp)  # type: ignore[attr-defined]
    return nlp


def _mentions(nlp: Language, text: str) -> dict[str, list[str]]:
    doc = nlp(text)
    return {s.text: [m.code for m in s._.cs_matches] for s in doc.spans[MENTIONS]}


@pytest.mark.parametrize(
    ("text", "span", "code"),
    [
        ("Right ankle sprain.", "ankle sprain", "S93.40"),
        ("Sprain of the right ankle.", "Sprain of the right ankle", "S93.40"),
        ("She sprained her R ankle.", "sprained her R ankle", "S93.40"),
        ("Known HTN.", "HTN", "I10"),  # "htn" is in the hypertension word group
        ("Essential hypertension.", "hypertension", "I10"),
        ("History of MS.", "MS", "G35.D"),
    ],
)
def test_mentions_match_in_any_word_order(nlp: Language, text: str, span: str, code: str) -> None:
    found = _mentions(nlp, text)
    assert code in found.get(span, []), found


def test_mentions_case_sensitive_abbreviation_needs_capitals(nlp: Language) -> None:
    assert not any("G35.D" in c for c in _mentions(nlp, "Seen by ms jones.").values())


def test_mentions_words_too_far_apart_do_not_match(nlp: Language) -> None:
    text = "Sprain resolved long ago, but today there is swelling, bruising, redness and warmth of the ankle."
    assert not any("S93.40" in c for c in _mentions(nlp, text).values())


def test_mentions_do_not_cross_sentences(nlp: Language) -> None:
    assert not any("S93.40" in c for c in _mentions(nlp, "Old sprain.\nAnkle is fine.").values())


def test_mentions_shorter_match_inside_longer_is_subsumed(nlp: Language) -> None:
    doc = nlp("Chest pain since morning.")
    pain = [m for s in doc.spans[MENTIONS] for m in s._.cs_matches if m.code == "R52"]
    chest = [m for s in doc.spans[MENTIONS] for m in s._.cs_matches if m.code == "R07.9"]
    assert pain and pain[0].subsumed
    assert chest and not chest[0].subsumed


def test_mentions_abbreviation_defined_in_note_carries_long_form(nlp: Language) -> None:
    found = _mentions(nlp, "Chronic obstructive pulmonary disease (COPD). COPD is stable.")
    assert any("J44.9" in codes for span, codes in found.items() if span == "COPD"), found


def test_candidates_complete_with_side_and_episode(nlp: Language) -> None:
    doc = nlp("Sprain of the left ankle, follow-up visit.")
    codes = set(doc._.cs_candidates)
    assert "S93.402D" in codes
    assert "S93.401D" not in codes and "S93.401A" not in codes


def test_mentions_empty_doc(nlp: Language) -> None:
    doc = nlp("")
    assert list(doc.spans[MENTIONS]) == [] and doc._.cs_candidates == {}


def test_mentions_and_candidates_round_trip(nlp: Language, tmp_path: Path) -> None:
    text = "Sprain of the right ankle and chest pain. Known hypertension."
    doc = nlp(text)
    before = [(s.start, s.end, [c.code for c in s._.cs_candidates]) for s in doc.spans[MENTIONS]]
    nlp.to_disk(tmp_path / "nlp")
    again = spacy.load(tmp_path / "nlp")(text)
    after = [(s.start, s.end, [c.code for c in s._.cs_candidates]) for s in again.spans[MENTIONS]]
    assert before == after and before


def test_mentions_without_table_is_a_clear_error() -> None:
    from pipeline.nlp.components import cs_candidates, cs_mentions  # noqa: F401

    nlp = spacy.blank("en")
    nlp.add_pipe("cs_mentions", config={"fuzzy": False})
    with pytest.raises(ValueError, match="no term table"):
        nlp("text")
