"""Tests of the ICD-10-CM tabular reader: the real April 2026 XML and small hand-made files."""

from __future__ import annotations

import csv
import random
import textwrap
import unicodedata
from pathlib import Path

import pytest
import simple_icd_10_cm

from pipeline.errors import DataFileError
from pipeline.kb.model import CodeRecord
from pipeline.kb.sources.icd10cm import (
    Tabular,
    TabularNode,
    build_records,
    packaged_tabular_path,
    parse_seventh_rules,
    place_seventh,
    read_tabular,
)

SMALL_TABULAR = """\
<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.tabular>
  <version>2099</version>
  <chapter>
    <name>19</name>
    <desc>Injuries (S00-T88)</desc>
    <excludes2><note>birth trauma (P10-P15)</note></excludes2>
    <section id="S90-S99">
      <desc>Injuries to the ankle and foot (S90-S99)</desc>
      <diag>
        <name>S93</name>
        <desc>Sprain of ankle</desc>
        <includes><note>sprain of ligament of ankle</note></includes>
        <excludes2><note>strain of muscle (S96.-)</note></excludes2>
        <sevenChrNote><note>Add a 7th character to each code from category S93</note></sevenChrNote>
        <sevenChrDef>
          <extension char="A">initial encounter</extension>
          <note>initial encounter NOS</note>
          <extension char="D">subsequent encounter</extension>
        </sevenChrDef>
        <notes>
          <note>7th characters D do not apply to codes in category S93
            with 6th character 8 - late</note>
        </notes>
        <diag>
          <name>S93.4</name>
          <desc>Sprain of ankle ligament</desc>
          <inclusionTerm><note>Sprained ankle NOS</note></inclusionTerm>
          <diag>
            <name>S93.401</name>
            <desc>Sprain of right ankle</desc>
          </diag>
          <diag>
            <name>S93.408</name>
            <desc>Sprain of ankle, late</desc>
          </diag>
        </diag>
        <diag>
          <name>S93.9</name>
          <desc>Sprain of foot</desc>
        </diag>
      </diag>
      <diag>
        <name>T07</name>
        <desc>Multiple injuries</desc>
        <sevenChrDef>
          <extension char="A">initial encounter</extension>
        </sevenChrDef>
        <excludes1><note>injury NOS (T14.90)</note></excludes1>
      </diag>
      <diag>
        <name>T10</name>
        <desc>Other injury</desc>
        <diag>
          <name>T10.1</name>
          <desc>Other injury of toe</desc>
        </diag>
      </diag>
    </section>
  </chapter>
</ICD10CM.tabular>
"""


@pytest.fixture(scope="module")
def real_records() -> tuple[Tabular, dict[str, CodeRecord]]:
    tabular = read_tabular()
    records, _ = build_records(tabular)
    return tabular, {r.code: r for r in records}


@pytest.fixture
def small_tabular(tmp_path: Path) -> Path:
    path = tmp_path / "icd10cm-tabular-April-1-2099.xml"
    path.write_text(SMALL_TABULAR, encoding="utf-8")
    return path


def test_icd10cm_every_code_of_the_code_list(
    real_records: tuple[Tabular, dict[str, CodeRecord]], data_dir: Path
) -> None:
    tabular, records = real_records
    listed = {
        line.strip()
        for line in (data_dir / "icd10cm" / "code-list-April-2026.txt").read_text().splitlines()
        if len(line.strip()) >= 3 and "-" not in line and not line.strip().isdigit()
    }
    mine = {code.replace(".", "") for code in records}
    assert mine == listed
    assert sum(r.billable for r in records.values()) == 74_719
    assert tabular.version == "FY2026 (April 1, 2026 update)"


def test_icd10cm_reads_the_packaged_file_and_the_data_copy_alike(data_dir: Path) -> None:
    data_copy = data_dir / "icd10cm" / "icd10c-tabular-April-1-2026.xml"
    assert packaged_tabular_path().read_bytes() == data_copy.read_bytes()


@pytest.mark.parametrize(
    ("code", "title", "billable", "parent"),
    [
        (
            "S93.401A",
            "Sprain of unspecified ligament of right ankle, initial encounter",
            True,
            "S93.401",
        ),
        ("S93.401", "Sprain of unspecified ligament of right ankle", False, "S93.40"),
        ("T14.90XA", "Injury, unspecified, initial encounter", True, "T14.90"),
        ("T07.XXXS", "Unspecified multiple injuries, sequela", True, "T07"),
        ("E11.9", "Type 2 diabetes mellitus without complications", True, "E11"),
        ("E11", "Type 2 diabetes mellitus", False, None),
        ("I10", "Essential (primary) hypertension", True, None),
        ("S52.5", "Fracture of lower end of radius", False, "S52"),
    ],
)
def test_icd10cm_known_codes(
    real_records: tuple[Tabular, dict[str, CodeRecord]],
    code: str,
    title: str,
    billable: bool,
    parent: str | None,
) -> None:
    rec = real_records[1][code]
    assert (rec.title, rec.billable, rec.parent) == (title, billable, parent)


def test_icd10cm_hierarchy_and_notes(real_records: tuple[Tabular, dict[str, CodeRecord]]) -> None:
    records = real_records[1]
    s93 = records["S93"]
    assert (s93.chapter, s93.block) == ("19", "S90-S99")
    assert "strain of muscle and tendon of ankle and foot (S96.-)" in s93.excludes2
    assert "any associated open wound" in s93.code_also
    assert "diabetes mellitus due to underlying condition (E08.-)" in records["E11"].excludes1
    assert "Sprained ankle NOS" in records["S93.40"].inclusion_terms
    assert records["S93.401A"].seventh == {
        "A": "initial encounter",
        "D": "subsequent encounter",
        "S": "sequela",
    }
    assert records["S93.401A"].placeholder is False
    assert records["T14.90XA"].placeholder is True
    assert records["E11.9"].seventh is None


def test_icd10cm_seventh_character_exceptions_from_notes(
    real_records: tuple[Tabular, dict[str, CodeRecord]],
) -> None:
    records = real_records[1]
    # "7th characters D and S do not apply to codes in category S06 with 6th character 7 ... or 8"
    assert records["S06.1X7"].seventh == {"A": "initial encounter"}
    assert "S06.1X7A" in records and "S06.1X7D" not in records and "S06.1X8S" not in records
    assert records["S06.1X1D"].billable


def test_icd10cm_agrees_with_simple_icd_10_cm(
    real_records: tuple[Tabular, dict[str, CodeRecord]],
) -> None:
    records = real_records[1]
    parents = {r.parent for r in records.values()}
    sample = random.Random(7).sample(sorted(records), 400)
    for code in sample:
        rec = records[code]
        assert simple_icd_10_cm.is_leaf(code) == (code not in parents), code
        if rec.parent is not None:
            assert simple_icd_10_cm.get_parent(code) == rec.parent, code
        if not (rec.billable and rec.seventh):  # the library appends 7th-character sub-notes
            assert simple_icd_10_cm.get_description(code) == rec.title, code


def test_icd10cm_titles_match_the_cms_long_descriptions(
    real_records: tuple[Tabular, dict[str, CodeRecord]], data_dir: Path
) -> None:
    records = {code.replace(".", ""): rec for code, rec in real_records[1].items()}
    compared = differ = 0
    with open(data_dir / "icd10cm" / "icd10cm_codes_fy2025.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            rec = records.get(row["code"])
            if rec is None:
                continue
            compared += 1
            differ += _fold(rec.title) != row["long_description"]
    # FY2025 (CMS order file, accents dropped) against FY2026: a few dozen titles were reworded.
    assert compared > 97_000
    assert differ < 60


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@pytest.mark.parametrize(
    ("code", "char", "expected"),
    [
        ("T14.90", "A", "T14.90XA"),
        ("S93.401", "A", "S93.401A"),
        ("T07", "D", "T07.XXXD"),
        ("S06.1X7", "A", "S06.1X7A"),
        ("M48.40", "G", "M48.40XG"),
        ("O33.3", "1", "O33.3XX1"),
    ],
)
def test_icd10cm_place_seventh(code: str, char: str, expected: str) -> None:
    assert place_seventh(code, char) == expected


def test_icd10cm_small_file(small_tabular: Path) -> None:
    tabular = read_tabular(small_tabular)
    assert tabular.version == "FY2099 (April 1, 2099 update)"
    records, headers = build_records(tabular)
    by_code = {r.code: r for r in records}
    assert headers["chapter:19"].title == "Injuries"
    assert headers["chapter:19"].excludes2 == ("birth trauma (P10-P15)",)
    assert headers["S90-S99"].title == "Injuries to the ankle and foot"
    assert [r.code for r in records] == [
        "S93", "S93.4", "S93.401", "S93.401A", "S93.401D", "S93.408", "S93.408A",
        "S93.9", "S93.9XXA", "S93.9XXD", "T07", "T07.XXXA", "T10", "T10.1",
    ]  # fmt: skip
    assert by_code["S93.401D"].title == "Sprain of right ankle, subsequent encounter"
    assert by_code["S93.408"].seventh == {"A": "initial encounter"}  # the note takes D away
    assert by_code["T10.1"].billable and by_code["T10.1"].seventh is None
    assert not by_code["T10"].billable
    assert by_code["S93"].includes == ("sprain of ligament of ankle",)
    assert by_code["S93"].meta["seventh_note"] == (
        "Add a 7th character to each code from category S93; A also: initial encounter NOS"
    )
    assert by_code["S93.4"].inclusion_terms == ("Sprained ankle NOS",)


def test_icd10cm_parse_seventh_rules() -> None:
    node = TabularNode(
        code="S06",
        kind="code",
        title="Intracranial injury",
        notes=(
            "7th characters D and S do not apply to codes in category S06 with 6th character "
            "7 - death due to brain injury prior to regaining consciousness, or 8 - death due "
            "to other cause prior to regaining consciousness.",
        ),
    )
    (rule,) = parse_seventh_rules(node)
    assert (rule.position, rule.values, rule.excluded) == (5, frozenset("78"), frozenset("DS"))
    table = {"A": "initial", "D": "subsequent", "S": "sequela"}
    assert rule.allowed("S06.1X7", table) == {"A": "initial"}
    assert rule.allowed("S06.1X1", table) == table


def test_icd10cm_round_trip(small_tabular: Path) -> None:
    tabular = read_tabular(small_tabular)
    again = Tabular.from_dict(tabular.to_dict(), "test")
    assert again == tabular


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra=1), "unknown keys"),
        (lambda d: d.update(schema="other/1"), "expected schema"),
        (lambda d: d["nodes"][3].__setitem__(1, "leaf"), "bad code/kind/title"),
        (lambda d: d["nodes"][3][6].__setitem__("colour", ["red"]), "unknown key"),
        (lambda d: d["nodes"][2][6].__setitem__("seventh_def", {"AB": "x"}), "seventh_def"),
        (lambda d: d["nodes"].__setitem__(0, ["S93"]), r"expected \[code"),
    ],
)
def test_icd10cm_from_dict_rejects_bad_data(small_tabular: Path, mutate, message: str) -> None:
    data = read_tabular(small_tabular).to_dict()
    mutate(data)
    with pytest.raises(DataFileError, match=message):
        Tabular.from_dict(data, "kb.json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<ICD10CM.tabular><chapter>", "line"),
        ("<other/>", "expected <ICD10CM.tabular>"),
        ("<ICD10CM.tabular><version>1</version></ICD10CM.tabular>", "no <diag>"),
        (
            "<ICD10CM.tabular><chapter><name>1</name><desc>x</desc><section id='A00-A09'>"
            "<desc>x</desc><diag><name>A0</name><desc>x</desc></diag></section></chapter>"
            "</ICD10CM.tabular>",
            "bad diag name",
        ),
    ],
)
def test_icd10cm_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tabular.xml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(DataFileError, match=message) as info:
        read_tabular(path)
    assert str(path) in str(info.value)


def test_icd10cm_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such"):
        read_tabular(tmp_path / "absent.xml")
