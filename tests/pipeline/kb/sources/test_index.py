"""Tests of the Alphabetic Index readers: hand-made CDC XML and CSV files, the real 2025 files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import DataFileError
from pipeline.kb.model import IndexEntry
from pipeline.kb.sources.index import (
    AlphabeticIndex,
    find_index_files,
    normalize_column,
    parse_code,
    read_alphabetic_index,
    read_index_csv,
    read_index_xml,
    reference_codes,
    split_nonessential,
)

SMALL_INDEX_XML = """\
<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.index>
  <version>2099</version>
  <title>TEST INDEX</title>
  <letter>
    <title>A</title>
    <mainTerm>
      <title>Abscess<nemod>(connective tissue) (embolic)</nemod></title>
      <code>L02.91</code>
      <term level="1">
        <title>ankle</title>
        <see>Abscess, lower limb</see>
      </term>
      <term level="1">
        <title>foot</title>
        <seeAlso>Abscess, by site</seeAlso>
        <code>L02.61-</code>
      </term>
      <term level="1">
        <title>lower limb</title>
        <code>L02.41-</code>
      </term>
    </mainTerm>
    <mainTerm>
      <title>Accidental</title>
      <see>condition</see>
    </mainTerm>
  </letter>
  <letter>
    <title>C</title>
    <mainTerm>
      <title>Cardiopathy</title>
      <see>Disease, heart</see>
    </mainTerm>
    <mainTerm>
      <title>Cartilage<nemod>(articular)</nemod> NEC</title>
      <code>M94.9</code>
    </mainTerm>
  </letter>
  <letter>
    <title>D</title>
    <mainTerm>
      <title>Disease, diseased</title>
      <seeAlso>Syndrome</seeAlso>
      <term level="1">
        <title>heart<nemod>(organic)</nemod></title>
        <code>I51.9</code>
        <term level="2">
          <title>hypertensive</title>
          <see>Hypertension, heart</see>
        </term>
        <term level="2">
          <title><nemod>(somatoform)</nemod></title>
          <code>F45.8</code>
        </term>
      </term>
    </mainTerm>
  </letter>
  <letter>
    <title>H</title>
    <mainTerm>
      <title>Hypertension, hypertensive</title>
      <code>I10</code>
      <term level="1">
        <title>heart</title>
        <code>I11.9</code>
      </term>
    </mainTerm>
  </letter>
  <letter>
    <title>L</title>
    <mainTerm>
      <title>Lightning</title>
      <term level="1">
        <title>struck by</title>
        <subcat>T75.0</subcat>
      </term>
      <term level="1">
        <title>burn</title>
        <see>subcategory T75.0-</see>
      </term>
    </mainTerm>
  </letter>
</ICD10CM.index>
"""

SMALL_DRUG_XML = """\
<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.index>
  <version>2099</version>
  <indexHeading>
    <head col="1">Substance</head>
    <head col="2">Poisoning Accidental (unintentional)</head>
    <head col="3">Adverse effect</head>
    <head col="4">Underdosing</head>
  </indexHeading>
  <letter>
    <title>A</title>
    <mainTerm>
      <title>Acetaminophen</title>
      <cell col="2">T39.1X1</cell>
      <cell col="3">T39.1X5</cell>
      <cell col="4">T39.1X6</cell>
    </mainTerm>
    <mainTerm>
      <title>Arsenic<nemod>(compounds)</nemod></title>
      <cell col="2">T57.0X1</cell>
      <cell col="3">--</cell>
      <cell col="4">--</cell>
      <term level="1">
        <title>pesticide</title>
        <seeAlso>Acetaminophen</seeAlso>
        <cell col="2">T60.2-</cell>
      </term>
    </mainTerm>
  </letter>
</ICD10CM.index>
"""

SMALL_INDEX_CSV = """\
RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code
1,S,0,Sprain,,,(joint) (ligament),
2,S,1,ankle,,,,S93.40-
3,S,2,calcaneofibular ligament,,,,S93.41-
4,S,2,talofibular ligament,"Sprain, ankle, specified ligament NEC",,,
5,S,2,specified ligament NEC,,,,S93.49-
6,S,1,breast bone,"Sprain, sternum",,,
7,S,1,sternum,,,,S23.429
8,S,1,"fibular collateral, knee","Sprain, knee, collateral",,,
9,S,0,Synovitis,,,,M65.9
10,S,1,,,,(somatoform),F45.8
11,S,0,Strike,"Struck by, object",,,
12,S,0,Struck,,,(accidentally),W22.8
13,S,1,object,,,,W22.8
"""

SMALL_NEOPLASM_CSV = """\
RowID,Level,Term,SeeAlso,NonEssModif,MalignantPrimary,MalignantSecondary,CaInSitu,Benign,UncertainBehavior,UnspecifiedBehavior
1,0,"Neoplasm, neoplastic",,,C80.1,C79.9,D09.9,D36.9,D48.9,D49.9
2,1,"abdomen, abdominal",,,C76.2,C79.8-,D09.8,D36.7,D48.7,D49.89
3,2,wall,"Neoplasm, abdomen, wall, skin",,C44.509,C79.2-,D04.5,D23.5,D48.5,D49.2
4,3,skin,,,C44.509,-,-,-,-,-
"""


def _by_path(entries: list[IndexEntry]) -> dict[tuple[str, ...], list[IndexEntry]]:
    out: dict[tuple[str, ...], list[IndexEntry]] = {}
    for entry in entries:
        out.setdefault(entry.path, []).append(entry)
    return out


@pytest.fixture
def small_index(tmp_path: Path) -> AlphabeticIndex:
    path = tmp_path / "icd10cm-index-2099.xml"
    path.write_text(SMALL_INDEX_XML, encoding="utf-8")
    return read_alphabetic_index({"index": path})


@pytest.fixture(scope="module")
def real_index(data_dir: Path) -> AlphabeticIndex:
    return read_alphabetic_index(find_index_files(data_dir))


@pytest.fixture(scope="module")
def real_entries(real_index: AlphabeticIndex) -> dict[tuple[str, ...], list[IndexEntry]]:
    return _by_path(real_index.entries())


def test_index_xml_paths_codes_and_modifiers(small_index: AlphabeticIndex) -> None:
    entries = _by_path(small_index.entries())
    (abscess,) = entries[("Abscess",)]
    assert (abscess.code, abscess.incomplete) == ("L02.91", False)
    assert abscess.nonessential == ("connective tissue", "embolic")
    (limb,) = entries[("Abscess", "lower limb")]
    assert (limb.code, limb.incomplete) == ("L02.41", True)
    (heart,) = entries[("Disease, diseased", "heart")]
    assert heart.nonessential == ("organic",)
    # Text after the non-essential modifiers stays in the term; a line of modifiers only keeps them.
    assert ("Cartilage NEC",) in entries
    assert entries[("Disease, diseased", "heart", "(somatoform)")][0].code == "F45.8"
    assert small_index.versions == {"index": "2099"}


@pytest.mark.parametrize(
    ("path", "see_path"),
    [
        (("Abscess", "ankle"), ("Abscess", "lower limb")),
        (("Cardiopathy",), ("Disease, diseased", "heart")),  # "Disease" names "Disease, diseased"
        (("Disease, diseased", "heart", "hypertensive"), ("Hypertension, hypertensive", "heart")),
        (("Abscess", "foot"), ("Abscess",)),  # "see also Abscess, by site"
        (("Accidental",), None),  # "see condition": look the condition up
        (("Disease, diseased",), None),  # "see also Syndrome": no such term here
    ],
)
def test_index_xml_resolves_cross_references(
    small_index: AlphabeticIndex, path: tuple[str, ...], see_path: tuple[str, ...] | None
) -> None:
    (entry,) = _by_path(small_index.entries())[path]
    assert entry.see_path == see_path


def test_index_xml_category_references_become_incomplete_codes(
    small_index: AlphabeticIndex,
) -> None:
    entries = _by_path(small_index.entries())
    assert [(e.code, e.incomplete) for e in entries[("Lightning", "struck by")]] == [("T75.0", True)]
    (burn,) = entries[("Lightning", "burn")]
    assert (burn.code, burn.incomplete, burn.see) == ("T75.0", True, "subcategory T75.0-")


def test_index_xml_table_columns(tmp_path: Path) -> None:
    path = tmp_path / "drug-2099.xml"
    path.write_text(SMALL_DRUG_XML, encoding="utf-8")
    index = read_alphabetic_index({"drug": path})
    entries = _by_path(index.entries())
    assert [(e.code, e.column) for e in entries[("Acetaminophen",)]] == [
        ("T39.1X1", "poisoning accidental"),
        ("T39.1X5", "adverse effect"),
        ("T39.1X6", "underdosing"),
    ]
    # "--" cells give no code.
    assert [(e.code, e.column) for e in entries[("Arsenic",)]] == [("T57.0X1", "poisoning accidental")]
    (pesticide,) = entries[("Arsenic", "pesticide")]
    assert (pesticide.code, pesticide.incomplete, pesticide.source) == ("T60.2", True, "drug")
    assert pesticide.see_path == ("Acetaminophen",)


def test_index_csv_tree_from_levels(tmp_path: Path) -> None:
    path = tmp_path / "ICD10CM_2099_Index.csv"
    path.write_text(SMALL_INDEX_CSV, encoding="utf-8")
    index = read_alphabetic_index({"index": path})
    assert index.versions == {"index": "2099"}
    entries = _by_path(index.entries())
    assert entries[("Sprain", "ankle", "calcaneofibular ligament")][0].code == "S93.41"
    assert entries[("Sprain", "ankle")][0].incomplete
    assert entries[("Sprain",)][0].nonessential == ("joint", "ligament")
    talo = entries[("Sprain", "ankle", "talofibular ligament")][0]
    assert talo.see_path == ("Sprain", "ankle", "specified ligament NEC")
    assert entries[("Sprain", "breast bone")][0].see_path == ("Sprain", "sternum")
    assert entries[("Sprain", "fibular collateral, knee")][0].see_path is None  # no "knee" line
    assert entries[("Synovitis",)][0].code == "M65.9"
    assert entries[("Synovitis", "(somatoform)")][0].code == "F45.8"
    # The CSV lost "by" after "Struck (accidentally)": the reference still finds the line.
    assert entries[("Strike",)][0].see_path == ("Struck", "object")


def test_index_csv_table(tmp_path: Path) -> None:
    path = tmp_path / "ICD10CM_2099_neoplasms.csv"
    path.write_text(SMALL_NEOPLASM_CSV, encoding="utf-8")
    nodes, version = read_index_csv(path, "neoplasm")
    assert version == "2099"
    index = AlphabeticIndex()
    index.add("neoplasm", nodes, version, path.name)
    index.resolve_references()
    entries = _by_path(index.entries())
    wall = ("Neoplasm, neoplastic", "abdomen, abdominal", "wall")
    assert [(e.code, e.incomplete, e.column) for e in entries[wall]][:2] == [
        ("C44.509", False, "malignant primary"),
        ("C79.2", True, "malignant secondary"),
    ]
    assert entries[wall][0].see_path == (*wall, "skin")
    assert [e.column for e in entries[(*wall, "skin")]] == ["malignant primary"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code\n1,A,1,x,,,,A00\n",
            "line 2: level 1",
        ),
        ("RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code\n1,A,0,x,,,,ABC-D\n", "line 2"),
        (
            "RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code\n1,A,zero,x,,,,A00\n",
            "not a number",
        ),
        ("RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code\n1,A,0,,,,,A00\n", "empty Term"),
        ("RowID,Level,Term\n1,0,x\n", "header lacks"),
        ("RowID,Letter,Level,Term,Code,Colour\n1,A,0,x,A00,red\n", "unknown columns"),
    ],
)
def test_index_csv_bad_rows_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "index.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError, match=message) as info:
        read_index_csv(path, "index")
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<ICD10CM.index><letter>", "line"),
        ("<ICD10CM.tabular/>", "expected <ICD10CM.index>"),
        ("<ICD10CM.index><letter><title>A</title></letter></ICD10CM.index>", "no <mainTerm>"),
        (
            "<ICD10CM.index><letter><title>A</title><mainTerm><title>x</title><code>12</code>"
            "</mainTerm></letter></ICD10CM.index>",
            "not an ICD-10-CM code",
        ),
    ],
)
def test_index_xml_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "index.xml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError, match=message):
        read_index_xml(path, "index")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("S93.41-", ("S93.41", True)),
        ("C56.-", ("C56", True)),
        ("t14.90", ("T14.90", False)),
        ("--", None),
    ],
)
def test_index_parse_code(text: str, expected: tuple[str, bool] | None) -> None:
    assert parse_code(text, "here") == expected


def test_index_small_helpers() -> None:
    assert split_nonessential("(joint) (ligament)") == ("joint", "ligament")
    assert normalize_column("Poisoning Accidental (unintentional)") == "poisoning accidental"
    assert reference_codes("categories T17 and T18") == ["T17", "T18"]
    assert reference_codes("Disease, heart") == []


def test_index_round_trip(small_index: AlphabeticIndex) -> None:
    again = AlphabeticIndex.from_dict(small_index.to_dict(), "test")
    assert again == small_index
    assert again.entries() == small_index.entries()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra=1), "unknown keys"),
        (lambda d: d["nodes"][1].__setitem__(1, 5), "out of range"),
        (lambda d: d["nodes"][0].__setitem__(0, "tabular"), "bad source"),
        (lambda d: d["nodes"][0].__setitem__(6, [["L02.91"]]), "bad codes"),
    ],
)
def test_index_from_dict_rejects_bad_data(small_index: AlphabeticIndex, mutate, message: str) -> None:
    data = small_index.to_dict()
    mutate(data)
    with pytest.raises(DataFileError, match=message):
        AlphabeticIndex.from_dict(data, "index.json")


# -- the real files -------------------------------------------------------------------------------
def test_index_finds_every_source(data_dir: Path) -> None:
    files = find_index_files(data_dir)
    assert sorted(files) == ["drug", "external", "index", "neoplasm"]
    assert files["index"].suffix == ".csv"  # the main index XML is not in the data folder
    assert all(files[s].suffix == ".xml" for s in ("drug", "external", "neoplasm"))


@pytest.mark.parametrize(
    ("path", "code", "incomplete"),
    [
        (("Sprain", "ankle"), "S93.40", True),
        (("Sprain", "ankle", "calcaneofibular ligament"), "S93.41", True),
        (("Diabetes, diabetic", "type 2"), "E11.9", False),
        (("Hypertension, hypertensive",), "I10", False),
        (("Accident", "boat, boating", "striking swimmer", "powered"), "V94.11", False),  # external
    ],
)
def test_index_real_entries(
    real_entries: dict[tuple[str, ...], list[IndexEntry]],
    path: tuple[str, ...],
    code: str,
    incomplete: bool,
) -> None:
    assert (code, incomplete) in [(e.code, e.incomplete) for e in real_entries[path]]


@pytest.mark.parametrize(
    ("path", "see", "see_path"),
    [
        (("Abscess", "ankle"), "Abscess, lower limb", ("Abscess", "lower limb")),
        (("Sprain", "ankle", "talofibular ligament"), "Sprain, ankle, specified ligament NEC",
         ("Sprain", "ankle", "specified ligament NEC")),
        (("Abandonment",), "Maltreatment", ("Maltreatment",)),
        (("Accidental",), "condition", None),
    ],
)  # fmt: skip
def test_index_real_cross_references(
    real_entries: dict[tuple[str, ...], list[IndexEntry]],
    path: tuple[str, ...],
    see: str,
    see_path: tuple[str, ...] | None,
) -> None:
    (entry,) = real_entries[path]
    assert (entry.see, entry.see_path) == (see, see_path)


def test_index_real_neoplasm_and_drug_rows(
    real_entries: dict[tuple[str, ...], list[IndexEntry]],
) -> None:
    abdomen = {e.column: (e.code, e.incomplete) for e in real_entries[("Neoplasm, neoplastic", "abdomen, abdominal")]}
    assert abdomen["malignant primary"] == ("C76.2", False)
    assert abdomen["malignant secondary"] == ("C79.8", True)
    assert abdomen["unspecified behavior"] == ("D49.89", False)
    assert all(e.source == "neoplasm" for e in real_entries[("Neoplasm, neoplastic", "abdomen, abdominal")])
    propanol = {e.column: e.code for e in real_entries[("1-propanol",)]}
    assert propanol == {
        "poisoning accidental": "T51.3X1",
        "poisoning intentional self-harm": "T51.3X2",
        "poisoning assault": "T51.3X3",
        "poisoning undetermined": "T51.3X4",
    }  # "--" for adverse effect and underdosing


@pytest.mark.parametrize(
    ("source", "xml_name", "csv_name", "lines", "coded"),
    [
        ("neoplasm", "icd-10-cm-neoplasm-2025.xml", "ICD10CM_2025_neoplasms.csv", 1939, 9018),
        ("drug", "icd-10-cm-drug-2025.xml", "ICD10CM_2025_Drugs.csv", 7428, 40026),
    ],
)
def test_index_xml_and_csv_tables_agree(
    data_dir: Path, source: str, xml_name: str, csv_name: str, lines: int, coded: int
) -> None:
    xml_nodes, xml_version = read_index_xml(data_dir / "icd10cm" / "cdc_xml" / xml_name, source)
    csv_nodes, csv_version = read_index_csv(data_dir / "icd10cm" / "derived_csv_wbdill" / csv_name, source)
    assert xml_version == csv_version == "2025"
    assert len(xml_nodes) == len(csv_nodes) == lines
    xml_cells = [c for n in xml_nodes for c in n.codes if c[2] is not None]
    csv_cells = [c for n in csv_nodes for c in n.codes]
    assert len(xml_cells) == len(csv_cells) == coded
    assert set(xml_cells) == set(csv_cells)
    # Besides the cells, the XML "see category ..." references give a few incomplete codes.
    assert all(c[1] for n in xml_nodes for c in n.codes if c[2] is None)


def test_index_external_cause_xml_and_csv(data_dir: Path) -> None:
    xml_nodes, _ = read_index_xml(data_dir / "icd10cm" / "cdc_xml" / "icd-10-cm-eindex-2025.xml", "external")
    csv_path = data_dir / "icd10cm" / "derived_csv_wbdill" / "ICD10CM_2025_ExternalIndex.csv"
    csv_nodes, _ = read_index_csv(csv_path, "external")
    assert len(xml_nodes) == len(csv_nodes) == 8064
    assert sum(1 for n in xml_nodes if n.parent == -1) == 314
    # The XML keeps "see category/subcategory" codes that the flattened CSV drops.
    assert sum(len(n.codes) for n in xml_nodes) > sum(len(n.codes) for n in csv_nodes)


def test_index_real_reference_resolution_rate(real_index: AlphabeticIndex) -> None:
    counts = real_index.resolve_references()
    total = counts["resolved"] + counts["unresolved"]
    assert total > 15_000
    assert counts["resolved"] / total > 0.8
