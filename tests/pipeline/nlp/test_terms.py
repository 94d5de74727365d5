"""The term table and the curated clinical lexicon."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import RuleFileError
from pipeline.kb.store import KnowledgeBase
from pipeline.nlp.terms import Term, TermTable, clean_title, kind_of, load_lexicon
from pipeline.nlp.textnorm import Normalizer, WordGroups


def test_terms_lexicon_codes_are_billable(kb: KnowledgeBase) -> None:
    entries = load_lexicon()
    assert len(entries) >= 300
    bad = [(e.phrase, e.code) for e in entries if (rec := kb.get(e.code, e.system)) is None or not rec.billable]
    assert bad == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"phrase": "", "code": "I10"}, "entries[0].phrase"),
        ({"phrase": "HTN", "code": "I10", "colour": "red"}, "entries[0]: unknown key 'colour'"),
        ({"phrase": "HTN", "code": "not a code"}, "entries[0]"),
        ({"phrase": "HTN", "code": "I10", "kind": "feeling"}, "kind"),
    ],
)
def test_terms_lexicon_loader_rejects_bad_entries(entry: dict, message: str) -> None:
    text = json.dumps({"schema": "codesuggest.clinical-lexicon/1", "entries": [entry]})
    with pytest.raises(RuleFileError, match=r"lex\.json") as info:
        load_lexicon(text, "lex.json")
    assert message in str(info.value)


def test_terms_lexicon_loader_rejects_invalid_json() -> None:
    with pytest.raises(RuleFileError, match="line 1"):
        load_lexicon("{not json", "lex.json")


@pytest.mark.parametrize(
    ("system", "code", "kind"),
    [
        ("ICD10CM", "R07.9", "symptom"),
        ("ICD10CM", "W19.XXXA", "external"),
        ("ICD10CM", "T39.1X1A", "drug"),
        ("ICD10CM", "S93.401A", "diagnosis"),
        ("CPT", "73610", "procedure"),
        ("HCPCS", "L4350", "supply"),
        ("HCPCS", "J1885", "drug"),
    ],
)
def test_terms_kind_of_code(system: str, code: str, kind: str) -> None:
    assert kind_of(system, code) == kind


def test_terms_clean_title_drops_unwritten_clauses() -> None:
    assert "except" not in clean_title("Malignant neoplasm of kidney, except renal pelvis")
    assert "(" not in clean_title("Pain in joint (acute)")


def test_terms_table_round_trip_and_anchors() -> None:
    terms = [
        Term(("ankl", "sprain"), "S93.40", "ICD10CM", "index", "diagnosis", "Sprain > ankle", incomplete=True),
        Term(("hypertens",), "I10", "ICD10CM", "lexicon", "diagnosis", "HTN"),
    ]
    table = TermTable(terms)
    again = TermTable.from_json(json.loads(json.dumps(table.to_json())))
    assert again.terms == terms
    anchored = {i for ids in again.anchors.values() for i in ids}
    assert anchored == {0, 1}


def test_terms_build_from_kb_covers_every_source(kb: KnowledgeBase) -> None:
    table = TermTable.build(kb, Normalizer(WordGroups.default()), load_lexicon())
    sources = {t.source for t in table.terms}
    assert {"lexicon", "index", "title", "inclusion", "neoplasm", "drug", "external", "cpt", "hcpcs"} <= sources
    sprain = [t for t in table.terms if t.text == "Sprain > ankle"]
    assert sprain and sprain[0].code == "S93.40" and sprain[0].incomplete
