"""The strict readers of the encounter rule files and their building blocks."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from pipeline.encounter.diagnoses.rules import load_diagnosis_rules
from pipeline.encounter.em import load_em_rules
from pipeline.encounter.reading import load_reading_rules
from pipeline.encounter.rule_data import CodeSet, LabeledPhrases, Phrases, in_ranges
from pipeline.encounter.services import load_service_rules
from pipeline.errors import RuleFileError

LOADERS: dict[str, Callable[[Path | None], Any]] = {
    "encounter_reading.json": load_reading_rules,
    "encounter_diagnoses.json": load_diagnosis_rules,
    "encounter_services.json": load_service_rules,
    "encounter_em.json": load_em_rules,
}


def _packaged(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("pipeline.resources").joinpath(name).read_text("utf-8"))
    return data


@pytest.mark.parametrize(
    ("items", "inside", "outside"),
    [
        (["J18"], ["J18.9", "J18"], ["J17", "J19.0"]),
        (["J18.-"], ["J18.1"], ["J19"]),
        (["C18-C21"], ["C18.2", "C20", "C21.8"], ["C17.9", "C22.0"]),
        (["N18.1-N18.4"], ["N18.31", "N18.4"], ["N18.5", "N18.9"]),
        (["I10"], ["I10"], ["I11.9"]),
    ],
)
def test_encounter_data_code_set_membership(items: list[str], inside: list[str], outside: list[str]) -> None:
    codes = CodeSet.parse(items)
    assert all(c in codes for c in inside)
    assert not any(c in codes for c in outside)


@pytest.mark.parametrize("items", [[], ["j18"], ["J18.-x"], ["C21-C18"], "J18", [18]])
def test_encounter_data_code_set_rejects_bad_items(items: Any) -> None:
    with pytest.raises(ValueError, match="where"):
        CodeSet.parse(items, "where")


@pytest.mark.parametrize(
    ("phrases", "text", "found"),
    [
        (["rule out"], "Rule   out angina.", "Rule   out"),
        (["x-ray"], "right ankle X-ray, 3 views", "X-ray"),
        (["fall"], "he fell and falls often", None),
        (["likely", "most likely"], "most likely GERD", "most likely"),
    ],
)
def test_encounter_data_phrases_match_whole_words(phrases: list[str], text: str, found: str | None) -> None:
    match = Phrases(phrases).search(text)
    assert (match.group(0) if match else None) == found


def test_encounter_data_labeled_phrases_name_their_list() -> None:
    phrases = LabeledPhrases([("Z79.84", ["metformin"]), ("Z79.4", ["insulin", "insulin glargine"])])
    found = [(m.group(0), phrases.label(m)) for m in phrases.finditer("on Metformin and insulin  glargine")]
    assert found == [("Metformin", "Z79.84"), ("insulin  glargine", "Z79.4")]


@pytest.mark.parametrize(
    ("code", "ranges", "inside"),
    [
        ("81003", [("80000", "89999")], True),
        ("J0696", [("J0000", "J9999")], True),
        ("99213", [("80000", "89999")], False),
    ],
)
def test_encounter_data_service_ranges(code: str, ranges: list[tuple[str, str]], inside: bool) -> None:
    assert in_ranges(code, ranges) is inside


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_encounter_data_packaged_files_load(name: str) -> None:
    assert LOADERS[name](None) is not None


def _plain(value: Any) -> Any:
    """A comparable form of loaded rules (phrase sets, patterns and code sets by their text)."""
    if isinstance(value, Phrases):
        return tuple(value.phrases)
    if isinstance(value, re.Pattern):
        return value.pattern
    if isinstance(value, CodeSet):
        return value.items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "source"}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        items = [_plain(v) for v in value]
        return tuple(sorted(items, key=repr)) if isinstance(value, frozenset | set) else tuple(items)
    return value


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_encounter_data_copy_round_trips(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(json.dumps(_packaged(name), indent=1), "utf-8")
    assert _plain(LOADERS[name](path)) == _plain(LOADERS[name](None))


# One broken value per file; the message must name the file, a line and the place.
BROKEN = [
    ("encounter_reading.json", lambda d: d["assertion_cues"][0].update(category="maybe"), r"assertion_cues\[0\]"),
    ("encounter_reading.json", lambda d: d["headings"].pop("not_final"), "headings: missing key 'not_final'"),
    ("encounter_diagnoses.json", lambda d: d["personal_history"][2].update(code="Z85.0x8"), r"personal_history\[2\]"),
    ("encounter_diagnoses.json", lambda d: d["integral_symptoms"][1].update(extra=1), "unknown key 'extra'"),
    ("encounter_diagnoses.json", lambda d: d["bmi"]["bands"][3].update(max=1), r"bmi.bands\[3\]"),
    ("encounter_services.json", lambda d: d["bundles"][0].update(codes=["2952"]), r"bundles\[0\].codes"),
    ("encounter_services.json", lambda d: d["context"].update(not_today_patterns=["("]), "bad regular expression"),
    ("encounter_em.json", lambda d: d["problems"][0].update(level="severe"), r"problems\[0\].level"),
    ("encounter_em.json", lambda d: d["data"]["interpreted_here"].update(sonar=["70010"]), "not a test name"),
]


@pytest.mark.parametrize(("name", "breaks", "where"), BROKEN)
def test_encounter_data_loaders_reject_broken_values(
    tmp_path: Path, name: str, breaks: Callable[[dict[str, Any]], Any], where: str
) -> None:
    data = _packaged(name)
    breaks(data)
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=1), "utf-8")
    with pytest.raises(RuleFileError) as error:
        LOADERS[name](path)
    message = str(error.value)
    assert message.startswith(str(path))
    assert re.match(rf"{re.escape(str(path))}: line \d+: ", message), message
    assert re.search(where, message), message
