"""Word normalisation: both sides of a match meet on the same keys."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import RuleFileError
from pipeline.nlp.textnorm import Normalizer, WordGroups, fold


@pytest.fixture(scope="module")
def norm() -> Normalizer:
    return Normalizer(WordGroups.default())


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("sprained", "sprain"),
        ("ankles", "ankle"),
        ("renal", "kidney"),
        ("oesophageal", "esophageal"),
        ("haemorrhage", "hemorrhage"),
        ("anaemia", "anemia"),
        ("tumour", "tumor"),
        ("R", "right"),
        ("Lt", "left"),
        ("febrile", "fever"),
        ("carcinoma", "cancer"),
    ],
)
def test_textnorm_equivalent_words_share_a_key(norm: Normalizer, a: str, b: str) -> None:
    assert norm.key(a) == norm.key(b)


@pytest.mark.parametrize("word", ["of", "the", "with", "patient"])
def test_textnorm_stop_words_have_no_key(norm: Normalizer, word: str) -> None:
    assert norm.key(word) is None


def test_textnorm_required_keys_drop_optional_words(norm: Normalizer) -> None:
    keys = norm.required_keys("Sprain of unspecified ligament of right ankle, initial encounter")
    assert keys == {norm.key("sprain"), norm.key("ligament"), norm.key("right"), norm.key("ankle")}


def test_textnorm_fold_removes_accents() -> None:
    assert fold("Ménière") == "Meniere"
    assert fold("plain") == "plain"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"schema": "wrong"}, "expected schema"),
        ({"schema": "codesuggest.word-groups/1", "colour": []}, "unknown key 'colour'"),
        ({"schema": "codesuggest.word-groups/1", "groups": [["lonely"]]}, "groups[0]"),
        ({"schema": "codesuggest.word-groups/1", "stopwords": "of"}, "stopwords"),
    ],
)
def test_textnorm_word_groups_loader_rejects_bad_files(data: dict, message: str) -> None:
    with pytest.raises(RuleFileError, match=r"groups\.json") as info:
        WordGroups.load(json.dumps(data), "groups.json")
    assert message in str(info.value)
