"""Tests of the CMS HCPCS Level II reader and the curated HCPCS synonym table."""

from __future__ import annotations

import csv
import datetime as dt
import json
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest

from pipeline.errors import DataFileError, RuleFileError
from pipeline.kb.sources.hcpcs import (
    SYNONYM_CATEGORIES,
    HcpcsFile,
    find_hcpcs_file,
    hcpcs_section,
    load_hcpcs_synonyms,
    read_hcpcs,
)

DISCLAIMER = ["Note regarding coverage and payment indicators", "", "More words of the notice.", ""]


def record(
    code: str,
    long: str,
    *,
    seq: int = 100,
    rec_id: str = "3",
    short: str = "",
    betos: str = "",
    added: str = "20000101",
    effective: str = "20200101",
    term: str = "",
    action: str = "N",
) -> str:
    """Build one first line of the CMS fixed-width layout (320 characters)."""
    chars = [" "] * 320
    field = code.rjust(5) if rec_id in "78" else code

    def put(start: int, text: str) -> None:
        chars[start : start + len(text)] = list(text)

    put(0, field)
    put(5, f"{seq:05d}")
    put(10, rec_id)
    put(11, long[:80])
    put(91, short[:28])
    put(256, betos)
    put(268, added)
    put(276, effective)
    put(284, term)
    put(292, action)
    return "".join(chars)


def continuation(code: str, text: str, seq: int = 200, rec_id: str = "4") -> str:
    """Build a continuation line (only columns 1-91, as CMS writes them)."""
    field = code.rjust(5) if rec_id in "78" else code
    return f"{field}{seq:05d}{rec_id}{text:<80}"


def sample_lines() -> list[str]:
    return [
        *DISCLAIMER,
        record("RT", "Right side of the body", rec_id="7", short="Right side"),
        record("ZZ", "Old manufacturer", rec_id="7", short="Old", term="20180331"),
        record("XY", "A modifier with a long text that goes on", rec_id="7", short="Long mod"),
        continuation("XY", "to a second line", rec_id="8"),
        record("A0425", "Ground mileage, per statute mile", short="Ground mileage", betos="O1A"),
        record(
            "L1906",
            "Ankle foot orthosis, multiligamentous ankle support, prefabricated,",
            short="Afo",
        ),
        continuation("L1906", "off-the-shelf"),
        record("J9999", "Old drug", short="Old drug", term="20191231", action="D"),
        record("E0100", "Cane", short="Cane", term="20211231"),
        record(
            "Q4038",
            "Cast supplies, short leg cast, adult (11 years +), fiberglass",
            short="Sht leg cast fiber",
        ),
        continuation("Q4038", "continued", seq=300),
    ]


def write_txt(folder: Path, lines: list[str], name: str = "HCPC2020_ANWEB_w_disclaimer.txt") -> Path:
    path = folder / name
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return path


def write_zip(folder: Path, lines: list[str], name: str = "2020-Alpha-Numeric-HCPCS-File.zip") -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("HCPC2020_README.txt", "read me")
        bundle.writestr("HCPC2020_ANWEB_w_disclaimer.txt", ("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return path


@pytest.fixture
def sample(tmp_path: Path) -> HcpcsFile:
    return read_hcpcs(write_txt(tmp_path, sample_lines()))


def test_hcpcs_reads_codes_and_joins_continuations(sample: HcpcsFile) -> None:
    codes = {c.code: c for c in sample.codes}
    assert list(codes) == ["A0425", "L1906", "J9999", "E0100", "Q4038"]
    assert codes["L1906"].title == "Ankle foot orthosis, multiligamentous ankle support, prefabricated, off-the-shelf"
    assert codes["Q4038"].title.endswith("fiberglass continued")
    assert codes["A0425"].meta["short_title"] == "Ground mileage"
    assert codes["A0425"].meta["betos"] == "O1A"
    assert codes["A0425"].meta["add_date"] == "2000-01-01"
    assert codes["A0425"].meta["effective_date"] == "2020-01-01"
    assert codes["J9999"].meta["action_code"] == "D"
    assert all(c.system == "HCPCS" for c in sample.codes)
    assert sample.version == "2020"


@pytest.mark.parametrize(
    ("code", "terminated"),
    [("A0425", False), ("J9999", True), ("E0100", False)],
    ids=["no-termination-date", "terminated-before-file-year", "terminates-after-file-year"],
)
def test_hcpcs_terminated_codes_are_not_billable(sample: HcpcsFile, code: str, terminated: bool) -> None:
    record_ = next(c for c in sample.codes if c.code == code)
    assert record_.terminated is terminated
    assert record_.billable is not terminated


def test_hcpcs_reads_modifiers(sample: HcpcsFile) -> None:
    mods = {m.code: m for m in sample.modifiers}
    assert list(mods) == ["RT", "ZZ", "XY"]
    assert mods["XY"].description == "A modifier with a long text that goes on to a second line"
    assert all(m.source == "HCPCS" for m in sample.modifiers)
    assert mods["ZZ"].kind == "terminated"
    assert mods["RT"].kind == "other"
    assert sample.modifier_meta["ZZ"]["termination_date"] == "2018-03-31"


def test_hcpcs_zip_and_txt_give_the_same_content(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    from_txt = read_hcpcs(write_txt(tmp_path / "a", sample_lines()))
    from_zip = read_hcpcs(write_zip(tmp_path / "b", sample_lines()))
    assert from_zip.codes == from_txt.codes
    assert from_zip.modifiers == from_txt.modifiers
    assert from_zip.source.endswith("!HCPC2020_ANWEB_w_disclaimer.txt")
    assert list((tmp_path / "b").iterdir()) == [tmp_path / "b" / "2020-Alpha-Numeric-HCPCS-File.zip"]


def test_hcpcs_version_falls_back_to_latest_effective_year(tmp_path: Path) -> None:
    lines = [
        record("A0425", "Ground mileage", effective="20190101"),
        record("A0426", "Als", effective="20210101"),
    ]
    parsed = read_hcpcs(write_txt(tmp_path, lines, name="anweb.txt"))
    assert parsed.version == "2021"


BAD_LINES = {
    "bad-record-id": (record("A0425", "Mileage", rec_id="5"), "record identification code"),
    "bad-sequence": (record("A0425", "Mileage").replace("00100", "0x100", 1), "sequence number"),
    "bad-code": (record("A042", "Mileage"), "not a HCPCS Level II code"),
    "lower-case-code": (record("a0425", "Mileage"), "not a HCPCS Level II code"),
    "misaligned-modifier": (
        record("RT", "Right", rec_id="7").replace("   RT", "RT   ", 1),
        "not a modifier",
    ),
    "bad-date": (record("A0425", "Mileage", added="20201340"), "code added date"),
    "too-long": (record("A0425", "Mileage") + "X", "at most 320"),
    "short-first-line": (record("A0425", "Mileage")[:200], "needs 293"),
    "no-long-description": (record("A0425", ""), "no long description"),
    "orphan-continuation": (continuation("A0999", "text"), "does not follow its first line"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_hcpcs_malformed_line_names_file_and_line(tmp_path: Path, case: str) -> None:
    line, message = BAD_LINES[case]
    lines = [*DISCLAIMER, record("A0001", "First code"), line]
    path = write_txt(tmp_path, lines)
    with pytest.raises(DataFileError) as err:
        read_hcpcs(path)
    assert str(path) in str(err.value)
    assert f"line {len(DISCLAIMER) + 2}" in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([record("A0425", "One"), record("A0425", "Again")], "already defined on line 1"),
        ([record("A0425", "One"), continuation("A0426", "text")], "does not follow its first line"),
        (
            [
                record("A0425", "One"),
                continuation("A0425", "x", seq=300),
                continuation("A0425", "y", seq=200),
            ],
            "does not increase",
        ),
        ([record("A0425", "One"), continuation("A0425", "x", rec_id="8")], "not a modifier"),
        ([record("A0425", "One"), "some stray text in the middle"], "line 2"),
        (["no records here at all"], "no HCPCS records found"),
        (["x"] * 45, "not a CMS alpha-numeric fixed-width file"),
    ],
    ids=[
        "duplicate",
        "continuation-of-other-code",
        "sequence-goes-back",
        "code-continued-as-modifier",
        "stray-text",
        "empty",
        "not-hcpcs",
    ],
)
def test_hcpcs_structure_errors(tmp_path: Path, lines: list[str], message: str) -> None:
    with pytest.raises(DataFileError, match=message):
        read_hcpcs(write_txt(tmp_path, lines))


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (["HCPC2020_README.txt"], "no HCPC<year>_ANWEB"),
        (["a_ANWEB.txt", "b_ANWEB.txt"], "several fixed-width files"),
    ],
    ids=["no-fixed-width-member", "two-fixed-width-members"],
)
def test_hcpcs_zip_member_errors(tmp_path: Path, members: list[str], message: str) -> None:
    path = tmp_path / "2020-Alpha-Numeric-HCPCS-File.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        for name in members:
            bundle.writestr(name, record("A0425", "Mileage"))
    with pytest.raises(DataFileError, match=message):
        read_hcpcs(path)


def test_hcpcs_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        read_hcpcs(tmp_path / "nope.zip")


def test_hcpcs_find_file_prefers_latest_zip(tmp_path: Path) -> None:
    folder = tmp_path / "hcpcs"
    folder.mkdir()
    write_txt(folder, [record("A0425", "x")], name="HCPC2021_ANWEB.txt")
    write_zip(folder, [record("A0425", "x")], name="2019-Alpha-Numeric-HCPCS-File.zip")
    write_zip(folder, [record("A0425", "x")], name="2020-Alpha-Numeric-HCPCS-File.zip")
    assert find_hcpcs_file(tmp_path) == folder / "2020-Alpha-Numeric-HCPCS-File.zip"


def test_hcpcs_find_file_takes_extracted_txt(tmp_path: Path) -> None:
    folder = tmp_path / "hcpcs"
    folder.mkdir()
    path = write_txt(folder, [record("A0425", "x")])
    assert find_hcpcs_file(tmp_path) == path


@pytest.mark.parametrize("make_folder", [False, True], ids=["no-folder", "empty-folder"])
def test_hcpcs_find_file_errors(tmp_path: Path, make_folder: bool) -> None:
    if make_folder:
        (tmp_path / "hcpcs").mkdir()
    with pytest.raises(DataFileError, match="hcpcs"):
        find_hcpcs_file(tmp_path)


@pytest.mark.parametrize(
    ("code", "letter", "block"),
    [
        ("A0425", "(A)", "A0000-A0999"),
        ("A4565", "(A)", "A4000-A8999"),
        ("E0114", "(E)", "E0100-E9999"),
        ("J1885", "(J)", "J0000-J8999"),
        ("J9045", "(J)", "J9000-J9999"),
        ("L1906", "(L)", "L0000-L4999"),
        ("L5000", "(L)", "L5000-L9999"),
        ("Q4038", "(Q)", "Q0000-Q9999"),
        ("V5336", "(V)", "V5000-V5999"),
    ],
)
def test_hcpcs_section_by_letter_and_range(code: str, letter: str, block: str) -> None:
    chapter, found_block, title = hcpcs_section(code)
    assert chapter is not None and chapter.endswith(letter)
    assert found_block == block
    assert title


# --- the real CMS file -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cms_2020(data_dir: Path) -> HcpcsFile:
    return read_hcpcs(find_hcpcs_file(data_dir))


def _iso(value: str) -> str | None:
    return dt.date(int(value[:4]), int(value[4:6]), int(value[6:])).isoformat() if value else None


def test_hcpcs_cms_2020_counts(cms_2020: HcpcsFile) -> None:
    assert cms_2020.version == "2020"
    assert len(cms_2020.codes) == 6710
    assert len(cms_2020.active_codes) == 6105
    assert len(cms_2020.modifiers) == 369
    assert all(c.block and c.chapter for c in cms_2020.codes)


def test_hcpcs_cms_2020_matches_parsed_reference(cms_2020: HcpcsFile, data_dir: Path) -> None:
    with open(data_dir / "hcpcs" / "HCPC2020_codes_parsed.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    codes = {c.code: c for c in cms_2020.codes}
    modifiers = {m.code: m for m in cms_2020.modifiers}
    assert {r["code"] for r in rows if r["kind"] == "code"} == set(codes)
    assert {r["code"] for r in rows if r["kind"] == "modifier"} == set(modifiers)
    for row in rows:
        if row["kind"] == "modifier":
            assert modifiers[row["code"]].description == row["long_description"], row["code"]
            meta = cms_2020.modifier_meta[row["code"]]
        else:
            rec = codes[row["code"]]
            assert rec.title == row["long_description"], row["code"]
            assert rec.terminated is bool(row["term_dt"]), row["code"]
            meta = rec.meta
            assert meta.get("betos", "") == row["betos"], row["code"]
            assert meta.get("add_date") == _iso(row["add_dt"]), row["code"]
            assert meta.get("effective_date") == _iso(row["act_eff_dt"]), row["code"]
            assert meta.get("action_code", "") == row["action_cd"], row["code"]
        assert meta["short_title"] == row["short_description"], row["code"]
        assert meta.get("termination_date") == _iso(row["term_dt"]), row["code"]


# --- synonyms --------------------------------------------------------------------------------

MUST_HAVE_SYNONYMS = [
    "L1902",
    "L1906",
    "L4350",
    "L4360",
    "L4361",
    "L4386",
    "L4387",
    "L1971",
    "L1810",
    "L1812",
    "L1820",
    "L1830",
    "L1832",
    "L1833",
    "L1851",
    "L3908",
    "L3807",
    "L3809",
    "L3916",
    "L0120",
    "L0172",
    "L0174",
    "L0625",
    "L0650",
    "L3650",
    "A4565",
    "E0110",
    "E0112",
    "E0114",
    "E0100",
    "E0105",
    "E0130",
    "E0135",
    "E0143",
    "K0001",
    "E0601",
    "A7030",
    "E0570",
    "E0607",
    "A4253",
    "A4259",
    "E1390",
    "E0431",
    "A6530",
    "A4570",
    "Q4034",
    "Q4038",
    "Q4049",
    "Q4050",
    "J1885",
    "J1030",
    "J1040",
    "J3301",
    "J0696",
    "J1100",
    "J2550",
    "J2405",
    "J3420",
    "J1200",
    "J0171",
    "J7030",
    "J7040",
    "J7050",
    "J2270",
    "J3010",
    "G0008",
    "G0009",
    "G0442",
    "G0444",
    "A0425",
    "A0426",
    "A0427",
    "A0428",
    "A0429",
]


def test_hcpcs_synonyms_cover_the_common_items() -> None:
    codes = {s.code for s in load_hcpcs_synonyms()}
    assert not set(MUST_HAVE_SYNONYMS) - codes
    assert len(codes) >= 150


def test_hcpcs_synonym_codes_exist_and_are_active_in_2020(cms_2020: HcpcsFile) -> None:
    active = {c.code for c in cms_2020.active_codes}
    missing = [s.code for s in load_hcpcs_synonyms() if s.code not in active]
    assert missing == []


def test_hcpcs_synonyms_sharing_a_phrase_differ_in_features() -> None:
    by_phrase: dict[str, list[tuple[str, tuple[tuple[str, str], ...]]]] = defaultdict(list)
    for syn in load_hcpcs_synonyms():
        assert syn.category in SYNONYM_CATEGORIES
        for phrase in syn.phrases:
            by_phrase[phrase].append((syn.code, tuple(sorted(syn.features.items()))))
    clashes = {p: [c for c, _ in v] for p, v in by_phrase.items() if len({f for _, f in v}) < len(v)}
    assert clashes == {}


@pytest.mark.parametrize(
    ("code", "feature", "value"),
    [
        ("L4361", "fit", "off-the-shelf"),
        ("L4360", "fit", "custom-fitted"),
        ("L4387", "mechanism", "non-pneumatic"),
        ("Q4038", "material", "fiberglass"),
        ("Q4038", "patient", "adult"),
        ("J1885", "dose", "15 mg"),
    ],
)
def test_hcpcs_synonym_features(code: str, feature: str, value: str) -> None:
    syn = next(s for s in load_hcpcs_synonyms() if s.code == code)
    assert syn.features[feature] == value


def _synonym_file(tmp_path: Path, entries: list[object], schema: str = "codesuggest.hcpcs-synonyms/1") -> Path:
    path = tmp_path / "syn.json"
    body = ",\n".join("  " + json.dumps(e) for e in entries)
    path.write_text(f'{{\n "schema": "{schema}",\n "entries": [\n{body}\n ]\n}}\n', encoding="utf-8")
    return path


GOOD = {
    "code": "L1906",
    "category": "orthosis",
    "phrases": ["ankle brace"],
    "features": {"body_part": "ankle"},
}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({**GOOD, "extra": 1}, "unknown key"),
        ({**GOOD, "code": "99213"}, "should match pattern"),
        ({**GOOD, "category": "gadget"}, "category"),
        ({**GOOD, "phrases": []}, "at least 1 item"),
        ({**GOOD, "phrases": ["Ankle Brace"]}, "lower case"),
        ({**GOOD, "phrases": ["brace", "brace"]}, "repeated"),
        ({**GOOD, "features": {"colour": "red"}}, "unknown key"),
        ({**GOOD, "features": {"fit": "OTS"}}, "lower case"),
        ({k: v for k, v in GOOD.items() if k != "features"}, "missing key"),
        (GOOD, "is listed twice"),
    ],
    ids=[
        "unknown-key",
        "bad-code",
        "bad-category",
        "no-phrases",
        "upper-case",
        "repeated-phrase",
        "unknown-feature",
        "upper-case-feature",
        "missing-key",
        "duplicate-code",
    ],
)
def test_hcpcs_synonym_loader_rejects_bad_entries(tmp_path: Path, bad: dict[str, object], message: str) -> None:
    path = _synonym_file(tmp_path, [GOOD, bad])
    with pytest.raises(RuleFileError) as err:
        load_hcpcs_synonyms(path)
    assert f"{path}: line 5: entries[1]" in str(err.value)
    assert message in str(err.value)


def test_hcpcs_synonym_loader_rejects_wrong_schema(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="expected schema"):
        load_hcpcs_synonyms(_synonym_file(tmp_path, [GOOD], schema="other/1"))
