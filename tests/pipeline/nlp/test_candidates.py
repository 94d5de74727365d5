"""From matched codes to billable candidates: the code tree and 7th characters."""

from __future__ import annotations

import pytest

from pipeline.kb.store import KnowledgeBase
from pipeline.nlp.candidates import CodeTree, add_seventh, choose_seventh, is_seventh_expansion
from pipeline.nlp.textnorm import Normalizer, WordGroups

FRACTURE = {c: c for c in "ABCDEFGHJKMNPQRS"}
INJURY = {"A": "initial encounter", "D": "subsequent encounter", "S": "sequela"}


@pytest.fixture(scope="module")
def norm() -> Normalizer:
    return Normalizer(WordGroups.default())


@pytest.fixture(scope="module")
def tree(kb: KnowledgeBase, norm: Normalizer) -> CodeTree:
    return CodeTree.build(kb, norm)


@pytest.mark.parametrize(
    ("code", "char", "expected"),
    [("T14.90", "A", "T14.90XA"), ("S93.401", "A", "S93.401A"), ("W19", "A", "W19.XXXA"), ("S62.0", "D", "S62.0XXD")],
)
def test_candidates_add_seventh_pads_with_placeholder(code: str, char: str, expected: str) -> None:
    assert add_seventh(code, char) == expected


@pytest.mark.parametrize(
    ("table", "episode", "attrs", "expected"),
    [
        (INJURY, "initial", {}, ("A", False)),
        (INJURY, None, {}, ("A", True)),
        (INJURY, "subsequent", {}, ("D", False)),
        (INJURY, "sequela", {}, ("S", False)),
        (FRACTURE, "initial", {"open": True}, ("B", False)),
        (FRACTURE, "subsequent", {}, ("D", False)),
        (FRACTURE, "subsequent", {"healing": "delayed"}, ("G", False)),
        (FRACTURE, "subsequent", {"healing": "nonunion"}, ("K", False)),
        (FRACTURE, "subsequent", {"healing": "malunion"}, ("P", False)),
        (FRACTURE, "subsequent", {"healing": "nonunion", "open": True}, ("M", False)),
    ],
)
def test_candidates_choose_seventh_from_episode(table: dict, episode: str | None, attrs: dict, expected: tuple) -> None:
    assert choose_seventh(table, episode, attrs) == expected


def test_candidates_seventh_expansion_detected() -> None:
    assert is_seventh_expansion("S93.401A", INJURY)
    assert not is_seventh_expansion("S93.401", INJURY)
    assert not is_seventh_expansion("I10", None)


@pytest.mark.parametrize(
    ("code", "words", "side", "episode", "expected"),
    [
        ("S93.40", "sprain right ankle", "right", "initial", "S93.401A"),
        ("S93.40", "sprain left ankle", "left", "subsequent", "S93.402D"),
        ("S93.40", "sprain ankle", None, None, "S93.409A"),
        ("I10", "hypertension", None, None, "I10"),
        ("E11", "type 2 diabetes", None, None, "E11.9"),
        ("M17", "bilateral osteoarthritis knee", "bilateral", None, "M17.0"),
        ("T14.90", "injury", None, "initial", "T14.90XA"),
    ],
)
def test_candidates_complete_follows_context(
    tree: CodeTree, norm: Normalizer, code: str, words: str, side: str | None, episode: str | None, expected: str
) -> None:
    results = tree.complete(code, frozenset(norm.keys(words)), laterality=side, episode=episode)
    assert results, code
    assert results[0][0] == expected
    assert all(tree.is_billable(c) for c, _, _ in results)


def test_candidates_complete_unknown_code_gives_nothing(tree: CodeTree) -> None:
    assert tree.complete("Q99.99", frozenset()) == []


def test_candidates_billable_other_systems(tree: CodeTree) -> None:
    assert tree.is_billable("73610")
    assert tree.is_billable("L4350")
    assert tree.complete("73610", frozenset()) == [("73610", 0.0, False)]


def test_candidates_tree_round_trip(tree: CodeTree) -> None:
    again = CodeTree.from_json(tree.to_json())
    assert again.nodes["S93.40"] == tree.nodes["S93.40"]
    assert again.sevenths == tree.sevenths
