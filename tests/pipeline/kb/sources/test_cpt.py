"""Tests of the licensed CPT file reader and the project's starter CPT lexicon.

Every descriptor in these fixtures is made up; no AMA descriptor text appears here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import DataFileError, RuleFileError
from pipeline.kb.sources.cpt import (
    CPT_CODE_RE,
    STARTER_CATEGORIES,
    STARTER_SOURCE,
    STARTER_VERSION,
    StarterEntry,
    cpt_section,
    load_starter_entries,
    load_starter_lexicon,
    read_cpt_file,
)

MADE_UP = [
    "# a made-up licensed file for tests",
    "code\tdescriptor",
    "",
    "99999\tPretend office chat about the weather",
    "1234F\tPretend quality flag for wearing hats",
    "0042T\tPretend emerging gadget check",
    "0099U\tPretend laboratory tea-leaf reading",
]


def write(tmp_path: Path, lines: list[str], encoding: str = "utf-8", name: str = "cpt.txt") -> Path:
    path = tmp_path / name
    path.write_bytes("\n".join(lines).encode(encoding) + b"\n")
    return path


def test_cpt_read_file_skips_header_comments_and_blanks(tmp_path: Path) -> None:
    records = read_cpt_file(write(tmp_path, MADE_UP))
    assert [r.code for r in records] == ["99999", "1234F", "0042T", "0099U"]
    assert records[0].title == "Pretend office chat about the weather"
    assert all(r.system == "CPT" and r.billable for r in records)
    assert records[0].meta == {"source": "licensed CPT file", "file": "cpt.txt"}
    assert records[1].chapter == "Category II (performance measurement)"


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("latin-1", b"")],
    ids=["utf8", "utf8-bom", "latin1"],
)
def test_cpt_read_file_encodings(tmp_path: Path, encoding: str, prefix: bytes) -> None:
    path = tmp_path / "cpt.txt"
    path.write_bytes(prefix + "code\tdescriptor\n99998\tPretend café visit, naïve\n".encode(encoding))
    (record,) = read_cpt_file(path)
    assert record.code == "99998"
    assert record.title == "Pretend café visit, naïve"


def test_cpt_read_file_lower_case_suffix_and_spaces_are_normalised(tmp_path: Path) -> None:
    (record,) = read_cpt_file(write(tmp_path, ["1234f\t  Pretend   flag  "]))
    assert (record.code, record.title) == ("1234F", "Pretend flag")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1234\tPretend short code", "is not a CPT code"),
        ("123456\tPretend long code", "is not a CPT code"),
        ("1234X\tPretend bad suffix", "is not a CPT code"),
        ("ABCDE\tPretend letters", "is not a CPT code"),
        ("99997 Pretend no tab", "expected 'code<TAB>descriptor'"),
        ("99997\tPretend\textra column", "found 3 tab-separated fields"),
        ("99997\t   ", "empty descriptor"),
        ("99999\tPretend repeat", "already listed on line 4"),
    ],
    ids=[
        "four-chars",
        "six-chars",
        "bad-suffix",
        "letters",
        "no-tab",
        "extra-tab",
        "empty",
        "duplicate",
    ],
)
def test_cpt_read_file_rejects_malformed_lines(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, [*MADE_UP, line])
    with pytest.raises(DataFileError) as err:
        read_cpt_file(path)
    assert f"{path}, line {len(MADE_UP) + 1}" in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("lines", "message"),
    [(["# only comments", ""], "no CPT codes"), (["code\tdescriptor"], "no CPT codes")],
    ids=["comments-only", "header-only"],
)
def test_cpt_read_file_without_codes(tmp_path: Path, lines: list[str], message: str) -> None:
    with pytest.raises(DataFileError, match=message):
        read_cpt_file(write(tmp_path, lines))


def test_cpt_read_file_missing(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        read_cpt_file(tmp_path / "absent.txt")


@pytest.mark.parametrize(
    ("code", "section"),
    [
        ("99213", "Evaluation and Management"),
        ("73610", "Radiology"),
        ("85025", "Pathology and Laboratory"),
        ("12001", "Surgery"),
        ("96372", "Medicine"),
        ("00100", "Anesthesia"),
        ("0042T", "Category III (emerging technology)"),
    ],
)
def test_cpt_section_by_range(code: str, section: str) -> None:
    assert cpt_section(code) == section


# --- starter lexicon -------------------------------------------------------------------------

REQUIRED = [
    "99202",
    "99203",
    "99204",
    "99205",
    "99211",
    "99212",
    "99213",
    "99214",
    "99215",
    "99281",
    "99282",
    "99283",
    "99284",
    "99285",
    "99221",
    "99222",
    "99223",
    "99231",
    "99232",
    "99233",
    "99238",
    "99239",
    "99242",
    "99243",
    "99244",
    "99245",
    "99385",
    "99386",
    "99387",
    "99395",
    "99396",
    "99397",
    "99417",
    "71045",
    "71046",
    "71047",
    "71048",
    "73600",
    "73610",
    "73620",
    "73630",
    "73560",
    "73562",
    "73564",
    "73100",
    "73110",
    "73120",
    "73130",
    "73030",
    "72100",
    "72110",
    "72040",
    "72050",
    "70450",
    "74176",
    "74177",
    "74178",
    "71250",
    "70551",
    "70552",
    "70553",
    "73721",
    "76700",
    "76705",
    "76856",
    "76801",
    "76805",
    "76815",
    "93306",
    "93970",
    "93971",
    "93000",
    "93005",
    "93010",
    "85025",
    "85027",
    "80048",
    "80053",
    "80061",
    "83036",
    "84443",
    "81001",
    "81002",
    "81003",
    "87086",
    "87880",
    "87804",
    "87635",
    "87811",
    "81025",
    "82947",
    "82962",
    "85610",
    "84484",
    "83880",
    "87040",
    "36415",
    "96372",
    "96360",
    "96361",
    "96365",
    "96366",
    "96374",
    "96375",
    "90471",
    "90472",
    "90686",
    "90715",
    "90732",
    "90670",
    "12001",
    "12002",
    "12004",
    "12005",
    "12006",
    "12007",
    "12011",
    "12013",
    "12031",
    "12032",
    "12041",
    "10060",
    "10061",
    "10120",
    "11730",
    "11200",
    "17110",
    "11102",
    "11103",
    "11104",
    "69209",
    "69210",
    "29515",
    "29125",
    "29130",
    "29540",
    "29405",
    "20600",
    "20605",
    "20610",
    "20552",
    "94640",
    "94760",
    "94010",
    "97597",
    "11042",
    "25600",
    "28470",
    "62270",
    "36556",
    "31500",
    "92950",
    "99291",
    "99292",
    "97161",
    "97162",
    "97163",
    "90832",
    "90834",
    "90837",
    "45378",
    "45380",
    "45385",
    "43235",
    "43239",
]


@pytest.fixture(scope="module")
def starter() -> dict[str, StarterEntry]:
    return {entry.code: entry for entry in load_starter_entries()}


def test_cpt_starter_covers_the_required_codes(starter: dict[str, StarterEntry]) -> None:
    assert sorted(set(REQUIRED) - set(starter)) == []
    assert len(starter) >= 150


def test_cpt_starter_records_shape() -> None:
    records = load_starter_lexicon()
    assert len(records) == len({r.code for r in records})
    for record in records:
        assert CPT_CODE_RE.match(record.code)
        assert record.system == "CPT" and record.billable
        assert record.meta["source"] == STARTER_SOURCE
        assert record.meta["category"] in STARTER_CATEGORIES
        assert record.block == record.meta["category"]
        assert record.chapter is not None
        # Titles are the project's own words: not the AMA's stock openings.
        assert not record.title.lower().startswith(("radiologic examination", "office or other outpatient visit"))


def test_cpt_starter_em_codes_have_cues_not_phrases() -> None:
    for entry in load_starter_entries():
        if entry.category == "em":
            assert entry.phrases == () and entry.em is not None and entry.cues, entry.code
        else:
            assert entry.phrases and entry.em is None, entry.code


@pytest.mark.parametrize(
    ("code", "setting", "patient", "mdm", "minutes"),
    [
        ("99203", "office", "new", "low", 30),
        ("99213", "office", "established", "low", 20),
        ("99215", "office", "established", "high", 40),
        ("99284", "emergency", "any", "moderate", None),
        ("99291", "critical-care", "any", "high", 30),
    ],
)
def test_cpt_starter_em_levels(
    starter: dict[str, StarterEntry],
    code: str,
    setting: str,
    patient: str,
    mdm: str,
    minutes: int | None,
) -> None:
    em = starter[code].em
    assert em is not None
    assert (em.setting, em.patient, em.mdm, em.minutes) == (setting, patient, mdm, minutes)


@pytest.mark.parametrize(
    ("code", "phrase", "feature", "value"),
    [
        ("73610", "3 view ankle", "views", "3+"),
        ("73600", "2 view ankle", "views", "2"),
        ("70450", "ct head without contrast", "contrast", "without"),
        ("12002", "laceration repair", "size_cm", "2.6-7.5"),
        ("69210", "cerumen removal", "method", "instrumentation"),
    ],
)
def test_cpt_starter_phrases_and_features(
    starter: dict[str, StarterEntry], code: str, phrase: str, feature: str, value: str
) -> None:
    entry = starter[code]
    assert phrase in entry.phrases
    assert entry.features[feature] == value


def test_cpt_starter_add_on_codes(starter: dict[str, StarterEntry]) -> None:
    add_ons = {code for code, entry in starter.items() if entry.add_on}
    assert {"99292", "99417", "96361", "96375", "90472", "11103"} <= add_ons
    assert "99291" not in add_ons


def test_cpt_starter_codes_sharing_a_phrase_differ_in_features() -> None:
    by_phrase: dict[str, list[tuple[str, tuple[tuple[str, str], ...]]]] = defaultdict(list)
    for entry in load_starter_entries():
        for phrase in entry.phrases:
            by_phrase[phrase].append((entry.code, tuple(sorted(entry.features.items()))))
    clashes = {p: [c for c, _ in v] for p, v in by_phrase.items() if len({f for _, f in v}) < len(v)}
    assert clashes == {}


def test_cpt_starter_record_meta_round_trips_entry(starter: dict[str, StarterEntry]) -> None:
    entry = starter["73610"]
    record = entry.to_record()
    assert record.synonyms == entry.phrases
    assert record.meta["feature.views"] == "3+"
    em_record = starter["99213"].to_record()
    assert em_record.meta["em.mdm"] == "low" and em_record.meta["em.minutes"] == "20"
    assert "established patient" in em_record.meta["cues"].split("|")


GOOD = {
    "code": "73610",
    "title": "Ankle pictures, three views",
    "category": "radiology",
    "phrases": ["3 view ankle"],
}
GOOD_EM: dict[str, Any] = {
    "code": "99213",
    "title": "Made-up visit",
    "category": "em",
    "phrases": [],
    "em": {"setting": "office", "patient": "established", "mdm": "low", "minutes": 20},
}


def _starter_file(tmp_path: Path, entries: list[object], version: str = STARTER_VERSION) -> Path:
    path = tmp_path / "starter.json"
    body = ",\n".join("  " + json.dumps(e) for e in entries)
    head = f'{{\n "schema": "codesuggest.cpt-starter/1",\n "version": "{version}",\n'
    text = f'{head} "codes": [\n{body}\n ]\n}}\n'
    path.write_text(text, encoding="utf-8")
    return path


def test_cpt_starter_loader_accepts_a_minimal_file(tmp_path: Path) -> None:
    entries = load_starter_entries(_starter_file(tmp_path, [GOOD, GOOD_EM]))
    assert [e.code for e in entries] == ["73610", "99213"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({**GOOD, "colour": "blue"}, "unknown key"),
        ({**GOOD, "code": "L1906"}, "should match pattern"),
        ({**GOOD, "category": "magic"}, "category"),
        ({**GOOD, "phrases": []}, "must not be empty"),
        ({**GOOD, "phrases": ["3 View Ankle"]}, "lower case"),
        ({**GOOD, "features": {"shoe_size": "9"}}, "unknown key"),
        ({**GOOD, "add_on": "yes"}, "valid boolean"),
        ({**GOOD, "title": " padded"}, "without edge spaces"),
        ({**GOOD, "em": GOOD_EM["em"]}, "only category 'em'"),
        ({**GOOD_EM, "phrases": ["office visit"]}, "take no phrases"),
        ({k: v for k, v in GOOD_EM.items() if k != "em"}, "needs an 'em' block"),
        ({**GOOD_EM, "em": {**GOOD_EM["em"], "setting": "spaceship"}}, "setting"),
        ({**GOOD_EM, "em": {**GOOD_EM["em"], "minutes": -5}}, "greater than 0"),
        ({**GOOD_EM, "em": {**GOOD_EM["em"], "mdm": "extreme"}}, "mdm"),
        (GOOD, "is listed twice"),
    ],
    ids=[
        "unknown-key",
        "bad-code",
        "bad-category",
        "no-phrases",
        "upper-case",
        "unknown-feature",
        "add-on-type",
        "padded-title",
        "em-block-on-radiology",
        "em-with-phrases",
        "em-without-block",
        "em-setting",
        "em-minutes",
        "em-mdm",
        "duplicate",
    ],
)
def test_cpt_starter_loader_rejects_bad_entries(tmp_path: Path, bad: dict[str, object], message: str) -> None:
    path = _starter_file(tmp_path, [GOOD, bad])
    with pytest.raises(RuleFileError) as err:
        load_starter_entries(path)
    assert f"{path}: line 6: codes[1]" in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"schema": "codesuggest.cpt-starter/1", "version": "0.0", "codes": []}',
            "does not match STARTER_VERSION",
        ),
        ('{"schema": "other/1", "codes": []}', "expected schema"),
        (f'{{"schema": "codesuggest.cpt-starter/1", "version": "{STARTER_VERSION}", "codes": {{}}}}', "valid array"),
        ('{"schema": "codesuggest.cpt-starter/1",\n "codes": [,]}', "line 2: not valid JSON"),
        (
            f'{{"schema": "codesuggest.cpt-starter/1", "version": "{STARTER_VERSION}", "codes": [], "extra": 1}}',
            "unknown key 'extra'",
        ),
    ],
    ids=["version", "schema", "not-a-list", "bad-json", "unknown-top-key"],
)
def test_cpt_starter_loader_rejects_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "starter.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError, match=message):
        load_starter_entries(path)
