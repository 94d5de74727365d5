"""The one strict loader of rule files: file, line and entry in every error."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from pipeline.errors import RuleFileError
from pipeline.rulefile import (
    PhraseList,
    PositiveInt,
    Regex,
    RuleFile,
    RuleModel,
    entry_error,
    load_rules,
    read_rules,
    schema_field,
    value_lines,
)


class _Item(RuleModel):
    name: Literal["a", "b"]
    size: PositiveInt = 1
    phrases: PhraseList = ("x",)


class _File(RuleFile):
    schema_id: Literal["test.items/1"] = schema_field()
    items: tuple[_Item, ...]
    pattern: Regex | None = None


GOOD = '{\n "schema": "test.items/1",\n "items": [\n  {"name": "a"},\n  {"name": "b", "size": 2}\n ]\n}\n'


def test_rulefile_loads_a_valid_file() -> None:
    loaded = load_rules(_File, GOOD, "items.json")
    assert [i.name for i in loaded.items] == ["a", "b"] and loaded.items[1].size == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{\n "schema": "test.items/2",\n "items": []\n}',
            "items.json: line 2: schema: expected schema 'test.items/1'",
        ),
        ('{\n "schema": "test.items/1"\n}', "items.json: line 1: missing key 'items'"),
        ('{"schema": "test.items/1", "items": [], "colour": 1}', "items.json: line 1: unknown key 'colour'"),
        (
            GOOD.replace('"size": 2', '"size": 0'),
            r"items.json: line 5: items\[1\].size: Input should be greater than 0",
        ),
        (
            GOOD.replace('"size": 2', '"size": "2"'),
            r"items.json: line 5: items\[1\].size: Input should be a valid integer",
        ),
        (
            GOOD.replace('{"name": "a"}', '{"name": "c"}'),
            r"line 4: items\[0\].name: unknown name 'c' \(allowed: a or b\)",
        ),
        (GOOD.replace('{"name": "a"}', '{"name": "a", "wide": true}'), r"line 4: items\[0\]: unknown key 'wide'"),
        (
            GOOD.replace('{"name": "a"}', '{"name": "a", "phrases": ["X"]}'),
            r"line 4: items\[0\].phrases\[0\]: 'X' must be lower case",
        ),
        (
            GOOD.replace('{"name": "a"}', '{"name": "a", "phrases": ["x", "x"]}'),
            r"items\[0\].phrases: \[1\] 'x' is repeated",
        ),
        (GOOD.replace('{"name": "a"}', '{"name": "a", "phrases": []}'), r"items\[0\].phrases: .*at least 1 item"),
        (GOOD.replace(' "items"', ' "pattern": "(",\n "items"'), r"line 3: pattern: bad regular expression"),
        ('{\n "schema": "test.items/1",\n "items": [\n}', "items.json: line 4: not valid JSON"),
    ],
)
def test_rulefile_errors_name_file_line_and_entry(text: str, message: str) -> None:
    with pytest.raises(RuleFileError, match=message):
        load_rules(_File, text, "items.json")


def test_rulefile_regex_is_case_insensitive() -> None:
    loaded = load_rules(_File, GOOD.replace(' "items"', ' "pattern": "ab+",\n "items"'), "items.json")
    assert loaded.pattern is not None and loaded.pattern.search("xABBy")


def test_rulefile_entry_error_points_at_the_entry() -> None:
    error = entry_error(GOOD, "items.json", ("items", 1), "duplicate")
    assert str(error) == "items.json: line 5: items[1]: duplicate"


def test_rulefile_value_lines_of_nested_values() -> None:
    lines = value_lines(GOOD)
    assert lines[()] == 1 and lines[("items",)] == 3 and lines[("items", 0, "name")] == 4


def test_rulefile_reads_a_path_and_names_an_unreadable_one(tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    path.write_text(GOOD, "utf-8")
    assert len(read_rules(_File, "unused.json", path).items) == 2
    with pytest.raises(RuleFileError, match="cannot read"):
        read_rules(_File, "unused.json", tmp_path / "missing.json")
