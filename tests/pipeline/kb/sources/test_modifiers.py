"""Tests of the project's modifier table and its merge with the CMS modifiers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import RuleFileError
from pipeline.kb.model import Modifier
from pipeline.kb.sources.hcpcs import find_hcpcs_file, read_hcpcs
from pipeline.kb.sources.modifiers import (
    MODIFIER_KINDS,
    TERMINATED_KIND,
    load_modifiers,
    merge_modifiers,
)

REQUIRED = [
    "RT",
    "LT",
    "50",
    "25",
    "26",
    "TC",
    "59",
    "XS",
    "XE",
    "XP",
    "XU",
    "51",
    "52",
    "53",
    "76",
    "77",
    "24",
    "57",
    "58",
    "78",
    "79",
    "91",
    "95",
    "GT",
    "F1",
    "F2",
    "F3",
    "F4",
    "F5",
    "F6",
    "F7",
    "F8",
    "F9",
    "FA",
    "T1",
    "T2",
    "T3",
    "T4",
    "T5",
    "T6",
    "T7",
    "T8",
    "T9",
    "TA",
    "E1",
    "E2",
    "E3",
    "E4",
    "LC",
    "LD",
    "RC",
    "KX",
    "GA",
    "GY",
    "GZ",
    "Q6",
    "QW",
    "22",
    "23",
    "33",
    "47",
    "54",
    "55",
    "56",
    "62",
    "80",
    "81",
    "82",
    "AS",
]


def test_modifiers_cover_the_required_set() -> None:
    table = load_modifiers()
    assert sorted(set(REQUIRED) - set(table)) == []
    for code, modifier in table.items():
        assert modifier.code == code
        assert modifier.kind in MODIFIER_KINDS
        assert modifier.source == "project"
        assert modifier.description and "\n" not in modifier.description


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("RT", "anatomic"),
        ("F5", "anatomic"),
        ("T1", "anatomic"),
        ("E3", "anatomic"),
        ("LD", "anatomic"),
        ("26", "professional-technical"),
        ("TC", "professional-technical"),
        ("25", "em"),
        ("57", "em"),
        ("59", "distinct-procedure"),
        ("XS", "distinct-procedure"),
        ("76", "repeat"),
        ("91", "repeat"),
        ("95", "telehealth"),
        ("GT", "telehealth"),
        ("GA", "payer"),
        ("QW", "payer"),
        ("51", "other"),
    ],
)
def test_modifiers_kinds(code: str, kind: str) -> None:
    assert load_modifiers()[code].kind == kind


def test_modifiers_merge_prefers_project_and_skips_terminated() -> None:
    project = {"RT": Modifier("RT", "Our words for right", "anatomic")}
    hcpcs = [
        Modifier("RT", "CMS words for right", source="HCPCS"),
        Modifier("AA", "Anesthesia by anesthesiologist", source="HCPCS"),
        Modifier("ZZ", "Withdrawn modifier", kind=TERMINATED_KIND, source="HCPCS"),
    ]
    merged = merge_modifiers(project, hcpcs)
    assert list(merged) == ["RT", "AA"]
    assert merged["RT"].description == "Our words for right"
    assert merged["AA"].source == "HCPCS"
    assert project == {"RT": Modifier("RT", "Our words for right", "anatomic")}


def test_modifiers_merge_with_the_cms_2020_file(data_dir: Path) -> None:
    cms = read_hcpcs(find_hcpcs_file(data_dir))
    project = load_modifiers()
    merged = merge_modifiers(project, cms.modifiers)
    active = {m.code for m in cms.modifiers if m.kind != TERMINATED_KIND}
    assert active <= set(merged)
    assert "ZA" not in merged  # terminated in 2018
    assert all(merged[code] is project[code] for code in project)
    assert len(merged) == len(active | set(project))


def _modifier_file(tmp_path: Path, entries: list[object]) -> Path:
    path = tmp_path / "modifiers.json"
    body = ",\n".join("  " + json.dumps(e) for e in entries)
    path.write_text(
        f'{{\n "schema": "codesuggest.modifiers/1",\n "modifiers": [\n{body}\n ]\n}}\n',
        encoding="utf-8",
    )
    return path


GOOD = {"code": "RT", "kind": "anatomic", "description": "Right side"}


def test_modifiers_loader_reads_a_file(tmp_path: Path) -> None:
    table = load_modifiers(_modifier_file(tmp_path, [GOOD, {**GOOD, "code": "LT", "description": "Left side"}]))
    assert table == {
        "RT": Modifier("RT", "Right side", "anatomic", "project"),
        "LT": Modifier("LT", "Left side", "anatomic", "project"),
    }


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({**GOOD, "code": "R"}, "should match pattern"),
        ({**GOOD, "code": "rt"}, "should match pattern"),
        ({**GOOD, "kind": "magic"}, "kind"),
        ({**GOOD, "description": ""}, "without edge spaces"),
        ({**GOOD, "note": "x"}, "unknown key"),
        ({"code": "RT", "kind": "anatomic"}, "missing key"),
        ("RT", "Input should be an object"),
        (GOOD, "listed twice"),
    ],
    ids=[
        "one-char",
        "lower-case",
        "bad-kind",
        "empty-description",
        "unknown-key",
        "missing-key",
        "not-object",
        "dup",
    ],
)
def test_modifiers_loader_rejects_bad_entries(tmp_path: Path, bad: object, message: str) -> None:
    path = _modifier_file(tmp_path, [GOOD, bad])
    with pytest.raises(RuleFileError) as err:
        load_modifiers(path)
    assert f"{path}: line 5: modifiers[1]" in str(err.value)
    assert message in str(err.value)
