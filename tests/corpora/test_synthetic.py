"""Checks of the synthetic encounter notes against the reference code sets and the tabular list.

The notes are the expected-answer set for encounter-level coding, so every code must be real and
billable, every rule must be exercised by at least two notes, and the instructional notes the
files claim to exercise (Excludes1/2, code first, use additional code) must really be printed in
the FY2026 tabular list. Every file in ``corpora/synthetic/*.jsonl`` gets the same checks (the
``notes`` fixture is parametrised by file); checks about the corpus as a whole (unique ids, rule
coverage) run over all files together.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import pytest

from corpora.format import CorpusCode, CorpusNote, read_corpus
from pipeline.kb.model import normalize_code

SYNTHETIC_DIR = Path(__file__).resolve().parents[2] / "corpora" / "synthetic"
SYNTHETIC = SYNTHETIC_DIR / "encounters.jsonl"
FILES = sorted(SYNTHETIC_DIR.glob("*.jsonl"))

RULE_IDS = (
    "icd.7th",
    "icd.laterality",
    "icd.uncertain.outpatient",
    "icd.uncertain.inpatient",
    "icd.negated",
    "icd.hypothetical",
    "icd.family_history",
    "icd.personal_history",
    "icd.integral_symptom",
    "icd.excludes1",
    "icd.excludes2",
    "icd.code_first",
    "icd.use_additional",
    "icd.first_listed",
    "icd.principal",
    "icd.billable",
    "icd.query",
    "icd.external_cause",
    "proc.imaging_views",
    "proc.injection",
    "proc.lab",
    "proc.minor",
    "supply.orthosis",
    "supply.dme",
    "em.time",
    "em.mdm",
    "em.new_vs_established",
    "mod.laterality",
    "mod.26_tc",
    "mod.25",
    "mod.59",
    "proc.pointers",
    "icd.combination",
    "icd.drug_table",
    "icd.neoplasm",
    "icd.pregnancy",
    "icd.screening",
    "icd.status",
    "em.preventive",
    "proc.vaccine",
    "supply.drug",
    "mod.33_pt",
    "mod.57",
)

META_KEYS = {
    "source",
    "title",
    "encounter",
    "rules",
    "forbidden",
    "em",
    "units",
    "queries",
    "notes",
    "specialty",
    "chapters",
    "split",
}
# Keys every note of a file other than encounters.jsonl must carry (the first file predates them).
NEW_FILE_KEYS = {"specialty", "chapters", "split"}
ENCOUNTERS = ("office", "urgent-care", "ed", "inpatient", "observation", "hospital", "procedure")
SPLITS = ("dev", "holdout")
CHAPTER = re.compile(r"I\.(?:A|B|C\.(?:[1-9]|1[0-9]|2[0-2]))|II|III|IV")

# 2023+ CPT office E/M time thresholds (minutes) and MDM levels.
TIME_LEVELS = {
    "new": [(60, "99205"), (45, "99204"), (30, "99203"), (15, "99202")],
    "established": [(40, "99215"), (30, "99214"), (20, "99213"), (10, "99212")],
}
MDM_LEVELS = {
    "new": {"straightforward": "99202", "low": "99203", "moderate": "99204", "high": "99205"},
    "established": {
        "straightforward": "99212",
        "low": "99213",
        "moderate": "99214",
        "high": "99215",
    },
    "ed": {"straightforward": "99282", "low": "99283", "moderate": "99284", "high": "99285"},
}
# Preventive medicine codes by patient type and age band (lowest age of the band, code).
PREVENTIVE = {
    "new": [(65, "99387"), (40, "99386"), (18, "99385"), (12, "99384"), (5, "99383"), (1, "99382"), (0, "99381")],
    "established": [
        (65, "99397"),
        (40, "99396"),
        (18, "99395"),
        (12, "99394"),
        (5, "99393"),
        (1, "99392"),
        (0, "99391"),
    ],
}
MEDICARE_WELLNESS = {"ippe": "G0402", "initial": "G0438", "subsequent": "G0439"}
EYE_VISITS = {
    ("new", "intermediate"): "92002",
    ("new", "comprehensive"): "92004",
    ("established", "intermediate"): "92012",
    ("established", "comprehensive"): "92014",
}
# Add-on codes reported with the E/M itself (psychotherapy with E/M, interactive complexity,
# prolonged service): they never call for modifier 25 on the E/M they add to.
EM_ADD_ONS = frozenset({"90785", "90833", "90836", "90838", "99417", "99292"})
# Hospital inpatient or observation care (CPT 2023): codes by MDM index (straightforward and low
# share the lowest level) or by total time on the date; discharge by time (over 30 minutes).
HOSPITAL_MDM = {
    "initial": ("99221", "99221", "99222", "99223"),
    "subsequent": ("99231", "99231", "99232", "99233"),
    "same-day": ("99234", "99234", "99235", "99236"),
}
HOSPITAL_TIME = {
    "initial": [(75, "99223"), (55, "99222"), (40, "99221")],
    "subsequent": [(50, "99233"), (35, "99232"), (25, "99231")],
    "same-day": [(85, "99236"), (70, "99235"), (45, "99234")],
}
HOSPITAL_CODES = frozenset({code for codes in HOSPITAL_MDM.values() for code in codes} | {"99238", "99239"})
MDM_INDEX = {"straightforward": 0, "low": 1, "moderate": 2, "high": 3}
_CODE = r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?"
_RANGE = re.compile(rf"\b({_CODE})\s*-\s*({_CODE})")
_SINGLE = re.compile(rf"\b({_CODE})")


@cache
def _read(path: Path) -> list[CorpusNote]:
    return read_corpus(path)


@pytest.fixture(scope="module", params=FILES, ids=lambda path: path.name)
def notes(request: pytest.FixtureRequest) -> list[CorpusNote]:
    """The notes of one synthetic file (every test that takes it runs once a file)."""
    return _read(request.param)


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[CorpusNote]]:
    """Every synthetic file by name, for checks over the whole corpus."""
    return {path.name: _read(path) for path in FILES}


@lru_cache(maxsize=1)
def _icd_lists(code_list: Path) -> tuple[frozenset[str], frozenset[str]]:
    codes = [line.strip() for line in code_list.read_text(encoding="utf-8").splitlines()]
    codes = [c for c in codes if c and "-" not in c and not c.isdigit()]
    leaves = {c for c, nxt in zip(codes, [*codes[1:], ""], strict=True) if not nxt.startswith(c)}
    return frozenset(codes), frozenset(leaves)


@pytest.fixture(scope="module")
def icd(data_dir: Path) -> tuple[frozenset[str], frozenset[str]]:
    """(every ICD-10-CM code and header, billable leaves), undotted, FY2026."""
    return _icd_lists(data_dir / "icd10cm" / "code-list-April-2026.txt")


@pytest.fixture(scope="module")
def hcpcs(data_dir: Path) -> dict[str, str]:
    """HCPCS code -> termination date ('' when active)."""
    with open(data_dir / "hcpcs" / "HCPC2020_codes_parsed.tsv", encoding="utf-8", newline="") as handle:
        return {row["code"]: row["term_dt"] for row in csv.DictReader(handle, delimiter="\t") if row["kind"] == "code"}


@pytest.fixture(scope="module")
def tabular(data_dir: Path) -> dict[str, dict[str, list[str]]]:
    """Undotted code -> instruction kind -> notes, chapter/section/ancestor notes merged in."""
    root = ET.parse(data_dir / "icd10cm" / "icd10c-tabular-April-1-2026.xml").getroot()
    kinds = ("excludes1", "excludes2", "codeFirst", "useAdditionalCode")
    out: dict[str, dict[str, list[str]]] = {}

    def own(elem: ET.Element) -> dict[str, list[str]]:
        return {k: [n.text or "" for x in elem.findall(k) for n in x.findall("note")] for k in kinds}

    def walk(elem: ET.Element, inherited: dict[str, list[str]]) -> None:
        for child in elem:
            if child.tag not in ("section", "diag"):
                continue
            merged = {k: inherited[k] + v for k, v in own(child).items()}
            if child.tag == "diag":
                out[(child.findtext("name") or "").replace(".", "")] = merged
            walk(child, merged)

    for chapter in root.iter("chapter"):
        walk(chapter, own(chapter))
    return out


@pytest.fixture(scope="module")
def chapter_of(data_dir: Path) -> dict[str, int]:
    """Undotted code or category -> its tabular chapter number (1-22)."""
    root = ET.parse(data_dir / "icd10cm" / "icd10c-tabular-April-1-2026.xml").getroot()
    return {
        (diag.findtext("name") or "").replace(".", ""): int(chapter.findtext("name") or 0)
        for chapter in root.iter("chapter")
        for diag in chapter.iter("diag")
    }


def _key(code: str) -> str:
    return code.replace(".", "").upper()


_CHARACTER = re.compile(r"(?:fifth or sixth|final) character ([0-9])(?:\s*-\s*([0-9]))?")
Ref = tuple[str, str, frozenset[str] | None]


def _refs(notes: list[str]) -> list[Ref]:
    """Code references of instructional notes as undotted (low, high, intents) prefix ranges.

    A note that narrows a T-code range by its intent character ('T36-T50 with fifth or sixth
    character 5') keeps the allowed characters, so an adverse-effect code does not match a
    'code first poisoning (... character 1-4)' note.
    """
    found: list[Ref] = []
    for note in notes:
        limit = _CHARACTER.search(note)
        chars = None
        if limit:
            first, last = limit.group(1), limit.group(2) or limit.group(1)
            chars = frozenset(str(d) for d in range(int(first), int(last) + 1))
        found += [(_key(low), _key(high), chars) for low, high in _RANGE.findall(note)]
        found += [(_key(code), _key(code), chars) for code in _SINGLE.findall(_RANGE.sub(" ", note))]
    return found


def _intent(key: str) -> str:
    """The intent character of a drug/toxin T-code: the last character before placeholder X or the 7th."""
    part = key[4:6].rstrip("X")
    return part[-1] if part else ""


def _matches(code: str, refs: list[Ref]) -> bool:
    key = _key(code)
    return any(
        key[: len(low)] >= low and key[: len(high)] <= high and (chars is None or _intent(key) in chars)
        for low, high, chars in refs
    )


def _notes_for(code: str, tabular: dict[str, dict[str, list[str]]]) -> dict[str, list[str]]:
    key = _key(code)
    for end in range(len(key), 2, -1):
        if key[:end] in tabular:
            return tabular[key[:end]]
    raise AssertionError(f"{code} not in the tabular list")


def _forbidden_matches(entry: str, code: str) -> bool:
    if entry.endswith(".-"):
        return _key(code).startswith(_key(entry[:-2]))
    return _key(entry) == _key(code)


def test_synthetic_files_found() -> None:
    assert SYNTHETIC in FILES
    assert len(FILES) >= 2


def test_synthetic_file_is_valid_and_large_enough(notes: list[CorpusNote]) -> None:
    assert len(notes) >= 32
    assert all(n.id.startswith("synthetic-") for n in notes)
    new_file = notes is not _read(SYNTHETIC)
    for note in notes:
        assert set(note.meta) <= META_KEYS, note.id
        assert note.meta["source"] == "synthetic"
        assert note.meta["title"] and note.meta["notes"], note.id
        assert note.meta["encounter"] in ENCOUNTERS, note.id
        assert (note.meta["encounter"] == "inpatient") == (note.setting == "inpatient"), note.id
        if new_file:
            assert set(note.meta) >= NEW_FILE_KEYS, f"{note.id}: needs {sorted(NEW_FILE_KEYS)}"
        if "specialty" in note.meta:
            assert isinstance(note.meta["specialty"], str) and note.meta["specialty"].strip(), note.id
        if "split" in note.meta:
            assert note.meta["split"] in SPLITS, note.id


def test_synthetic_encounters_file_has_both_settings() -> None:
    notes = _read(SYNTHETIC)
    assert {n.setting for n in notes} == {"inpatient", "outpatient"}
    assert sum(1 for n in notes if n.setting == "inpatient") >= 4


def test_synthetic_ids_unique_across_files(corpus: dict[str, list[CorpusNote]]) -> None:
    seen: dict[str, str] = {}
    for name, notes in corpus.items():
        for note in notes:
            assert note.id not in seen, f"{note.id} in both {seen[note.id]} and {name}"
            seen[note.id] = name


def test_synthetic_holdout_share_and_spread(notes: list[CorpusNote]) -> None:
    """A file with a held-out split keeps about a quarter of its notes out, across specialties."""
    splits = [n.meta.get("split") for n in notes]
    if not any(splits):
        return
    holdout = [n for n in notes if n.meta["split"] == "holdout"]
    assert 0.15 <= len(holdout) / len(notes) <= 0.35, f"{len(holdout)} of {len(notes)} held out"
    assert len({n.meta["specialty"] for n in holdout}) >= 8


def test_synthetic_chapters_are_honest(notes: list[CorpusNote], chapter_of: dict[str, int]) -> None:
    """meta.chapters names guideline sections the note's codes really come from."""
    for note in notes:
        if "chapters" not in note.meta:
            continue
        chapters = note.meta["chapters"]
        assert chapters and len(set(chapters)) == len(chapters), note.id
        for entry in chapters:
            assert CHAPTER.fullmatch(entry), f"{note.id}: {entry!r} is not a guideline section"
        mentioned = [c.code for c in note.codes if c.system == "ICD10CM"]
        mentioned += [f[:-2] if f.endswith(".-") else f for f in note.meta["forbidden"]]
        mentioned += [q["code_prefix"] for q in note.meta.get("queries", [])]
        present = {chapter_of.get(_key(c)) or chapter_of.get(_key(c)[:3]) for c in mentioned}
        for entry in chapters:
            if entry.startswith("I.C."):
                assert int(entry[4:]) in present, f"{note.id}: {entry} but no code of chapter {entry[4:]}"
        first = _key(note.codes[0].code)
        assert f"I.C.{chapter_of.get(first) or chapter_of[first[:3]]}" in chapters, f"{note.id}: first code's chapter"
        if note.setting == "outpatient":
            assert "IV" in chapters and "II" not in chapters, f"{note.id}: outpatient notes follow Section IV"
        else:
            assert "IV" not in chapters, f"{note.id}: Section IV is for outpatient care"


def test_synthetic_every_rule_in_at_least_two_notes(corpus: dict[str, list[CorpusNote]]) -> None:
    counts = Counter(rule for notes in corpus.values() for n in notes for rule in n.meta["rules"])
    unknown = set(counts) - set(RULE_IDS)
    assert not unknown, f"unknown rule ids {unknown}"
    thin = {rule: counts[rule] for rule in RULE_IDS if counts[rule] < 2}
    assert not thin, f"rules exercised by fewer than 2 notes: {thin}"


def test_synthetic_icd_codes_exist_and_are_billable(
    notes: list[CorpusNote], icd: tuple[frozenset[str], frozenset[str]]
) -> None:
    every, billable = icd
    for note in notes:
        for code in note.codes_of("ICD10CM"):
            assert _key(code) in billable, f"{note.id}: {code} is not a billable FY2026 ICD-10-CM code"
        for entry in note.meta["forbidden"]:
            if entry.endswith(".-") or "." in entry or normalize_code(entry)[0] == "ICD10CM":
                stem = _key(entry[:-2] if entry.endswith(".-") else entry)
                assert stem in every, f"{note.id}: forbidden {entry} is not an ICD-10-CM code or category"
        for query in note.meta.get("queries", []):
            assert any(c.startswith(_key(query["code_prefix"])) for c in billable), (note.id, query)
            assert query["question"].strip(), note.id


def test_synthetic_hcpcs_codes_exist_and_are_active(notes: list[CorpusNote], hcpcs: dict[str, str]) -> None:
    for note in notes:
        for code in note.codes_of("HCPCS"):
            assert code in hcpcs, f"{note.id}: {code} not in the HCPCS file"
            assert not hcpcs[code], f"{note.id}: {code} is terminated ({hcpcs[code]})"


def test_synthetic_forbidden_codes_never_expected(notes: list[CorpusNote]) -> None:
    for note in notes:
        forbidden = note.meta["forbidden"]
        assert forbidden and len(set(forbidden)) == len(forbidden), note.id
        for entry in forbidden:
            clash = [c.code for c in note.codes if _forbidden_matches(entry, c.code)]
            assert not clash, f"{note.id}: forbidden {entry} is also expected ({clash})"
        for query in note.meta.get("queries", []):
            assert not [c for c in note.codes_of("ICD10CM") if c.startswith(query["code_prefix"])], note.id


def test_synthetic_code_order_roles_and_pointers(notes: list[CorpusNote]) -> None:
    for note in notes:
        first = note.codes[0]
        expected_role = "principal" if note.setting == "inpatient" else "first-listed"
        assert (first.system, first.role) == ("ICD10CM", expected_role), note.id
        roles = [c.role for c in note.codes]
        assert roles.count(expected_role) == 1, note.id
        assert None not in roles, note.id
        systems = [c.system for c in note.codes]
        last_dx = max(i for i, s in enumerate(systems) if s == "ICD10CM")
        assert all(s != "ICD10CM" for s in systems[last_dx + 1 :]), f"{note.id}: diagnoses after service lines"
        assert "ICD10CM" not in systems[last_dx + 1 :]
        assert all(s == "ICD10CM" for s in systems[: last_dx + 1]), f"{note.id}: service line among diagnoses"
        for code in note.codes:
            if code.system in ("CPT", "HCPCS"):
                assert code.pointers, f"{note.id}: {code.code} has no diagnosis pointer"
        if note.setting == "inpatient":
            assert not note.codes_of("CPT") and not note.codes_of("HCPCS"), note.id
        units = note.meta.get("units", {})
        assert set(units) <= {c.code for c in note.codes}, note.id
        assert all(isinstance(v, int) and v >= 1 for v in units.values()), note.id


def _em_kind(code: str) -> str:
    """The family of an E/M line: problem-oriented office/ED, hospital, critical care, preventive,
    Medicare wellness or eye visit."""
    if code.startswith(("9920", "9921", "9928")):
        return "problem"
    if code in HOSPITAL_CODES:
        return "hospital"
    if code == "99291":
        return "critical"
    if code.startswith(("9938", "9939")):
        return "preventive"
    if code in MEDICARE_WELLNESS.values():
        return "wellness"
    if code in EYE_VISITS.values():
        return "eye"
    raise AssertionError(f"{code} is not an E/M code this corpus knows")


def _em_lines(note: CorpusNote) -> list[CorpusCode]:
    """E/M lines of a note, add-on codes (99292, psychotherapy with E/M) left out."""
    lines = [c for c in note.codes if c.role == "em" and c.code not in EM_ADD_ONS]
    kinds = [_em_kind(c.code) for c in lines]
    assert len(kinds) == len(set(kinds)), f"{note.id}: two E/M lines of the same kind"
    return lines


def _em_meta(note: CorpusNote) -> list[dict[str, Any]]:
    em = note.meta.get("em")
    if em is None:
        return []
    return list(em) if isinstance(em, list) else [em]


def _em_meta_kind(em: dict[str, Any]) -> str:
    if em["basis"] in ("time", "mdm"):
        return {"hospital": "hospital", "critical-care": "critical"}.get(em.get("place", ""), "problem")
    return {"preventive": "preventive", "awv": "wellness", "eye": "eye"}[em["basis"]]


def _check_level(note: CorpusNote, kind: str, line: CorpusCode, em: dict[str, Any]) -> None:
    if em["basis"] == "time":
        assert f"{em['minutes']} minutes" in note.text, f"{note.id}: time basis not documented"
    if kind == "preventive":
        level = next(code for floor, code in PREVENTIVE[em["patient"]] if em["age"] >= floor)
        assert line.code == level, f"{note.id}: preventive {em} -> {level}, not {line.code}"
    elif kind == "wellness":
        assert line.code == MEDICARE_WELLNESS[em["visit"]], note.id
    elif kind == "eye":
        assert line.code == EYE_VISITS[(em["patient"], em["level"])], note.id
    elif kind == "critical":
        minutes = em["minutes"]
        assert em["basis"] == "time" and minutes >= 30, note.id
        extra = (minutes - 45) // 30 if minutes >= 75 else 0
        assert note.meta.get("units", {}).get("99292", 0) == extra, f"{note.id}: {minutes} min -> 99292 x{extra}"
        assert ("99292" in {c.code for c in note.codes}) == bool(extra), note.id
    elif kind == "hospital":
        service = em["service"]
        if service == "discharge":
            level = "99239" if em["minutes"] > 30 else "99238"
        elif em["basis"] == "time":
            level = next(code for floor, code in HOSPITAL_TIME[service] if em["minutes"] >= floor)
        else:
            level = HOSPITAL_MDM[service][MDM_INDEX[em["mdm"]]]
        assert line.code == level, f"{note.id}: hospital {em} -> {level}, not {line.code}"
    elif line.code.startswith("9928"):
        assert em.get("place") == "ed" and em["basis"] == "mdm", note.id
        assert line.code == MDM_LEVELS["ed"][em["mdm"]], note.id
    else:
        patient = em["patient"]
        assert line.code[:4] == ("9920" if patient == "new" else "9921"), f"{note.id}: new vs established"
        if em["basis"] == "time":
            level = next(code for floor, code in TIME_LEVELS[patient] if em["minutes"] >= floor)
            assert line.code == level, f"{note.id}: {em['minutes']} min -> {level}, not {line.code}"
        else:
            assert em["basis"] == "mdm", note.id
            assert line.code == MDM_LEVELS[patient][em["mdm"]], note.id


def test_synthetic_em_level_matches_time_or_mdm(notes: list[CorpusNote]) -> None:
    for note in notes:
        lines = {_em_kind(c.code): c for c in _em_lines(note)}
        ems = {_em_meta_kind(em): em for em in _em_meta(note)}
        assert len(ems) == len(_em_meta(note)), f"{note.id}: two meta.em entries of the same kind"
        assert set(lines) == set(ems), f"{note.id}: E/M lines {sorted(lines)} but meta.em {sorted(ems)}"
        for kind, line in lines.items():
            _check_level(note, kind, line, ems[kind])


def _is_surgical(code: CorpusCode) -> bool:
    return code.system == "CPT" and "10004" <= code.code <= "69990"


def test_synthetic_modifier_25_policy(notes: list[CorpusNote]) -> None:
    """Modifiers on E/M lines follow the README policy.

    A problem-oriented office/ED E/M (and a hospital or critical care E/M) carries 25 exactly when
    another non-laboratory service is reported (a preventive visit included); an office E/M may
    carry 57 instead when that service is a procedure with a 90-day global period decided on at
    this visit (so 57 needs a surgical line). Preventive and Medicare wellness visits never take
    25; an eye visit code takes 25 only with a same-day surgical procedure, not with diagnostic eye
    tests. Add-on codes billed with the E/M itself (psychotherapy add-ons, 99292) call for no
    modifier and need their primary code.
    """
    for note in notes:
        lines = _em_lines(note)
        for line in lines:
            others = [
                c
                for c in note.codes
                if c.system in ("CPT", "HCPCS")
                and c is not line
                and not ("80000" <= c.code <= "89999" or c.code == "36415")
                and c.code not in EM_ADD_ONS
            ]
            kind = _em_kind(line.code)
            if kind in ("problem", "hospital", "critical"):
                assert not {"25", "57"} <= set(line.modifiers), note.id
                flagged = "25" in line.modifiers or "57" in line.modifiers
                assert flagged == bool(others), f"{note.id}: 25/57 with {[c.code for c in others]}"
                if "57" in line.modifiers:
                    assert kind == "problem" and any(_is_surgical(c) for c in others), f"{note.id}: 57"
            elif kind == "eye":
                assert ("25" in line.modifiers) == any(_is_surgical(c) for c in others), note.id
            else:
                assert "25" not in line.modifiers, f"{note.id}: {line.code} takes no 25"
        kinds = {_em_kind(c.code) for c in lines}
        for code in note.codes:
            if code.code == "99292":
                assert "critical" in kinds, f"{note.id}: 99292 without 99291"
            elif code.code in EM_ADD_ONS:
                assert "problem" in kinds, f"{note.id}: {code.code} without its E/M"


def test_synthetic_instructional_notes_are_real(
    notes: list[CorpusNote], tabular: dict[str, dict[str, list[str]]]
) -> None:
    """Claimed Excludes1/2, code-first and use-additional relations exist in the FY2026 tabular."""
    for note in notes:
        dx = note.codes_of("ICD10CM")
        info = {c: _notes_for(c, tabular) for c in dx}
        # Never two expected codes that are Excludes1 partners.
        for a in dx:
            for b in dx:
                assert a == b or not _matches(b, _refs(info[a]["excludes1"])), f"{note.id}: {a} Excludes1 {b}"
        rules = set(note.meta["rules"])
        forbidden = [
            f[:-2] if f.endswith(".-") else f
            for f in note.meta["forbidden"]
            if f.endswith(".-") or normalize_code(f)[0] == "ICD10CM"
        ]
        if "icd.excludes1" in rules:
            pairs = [
                (a, f)
                for a in dx
                for f in forbidden
                if _matches(f, _refs(info[a]["excludes1"])) or _matches(a, _refs(_notes_for(f, tabular)["excludes1"]))
            ]
            assert pairs, f"{note.id}: no forbidden Excludes1 partner of an expected code"
        if "icd.excludes2" in rules:
            assert any(_matches(b, _refs(info[a]["excludes2"])) for a in dx for b in dx if a != b), note.id
        if "icd.use_additional" in rules:
            assert any(_matches(b, _refs(info[a]["useAdditionalCode"])) for a in dx for b in dx if a != b), (
                f"{note.id}: no 'use additional code' pair"
            )
        if "icd.code_first" in rules:
            ordered = [
                (a, b) for i, a in enumerate(dx) for b in dx[i + 1 :] if _matches(a, _refs(info[b]["codeFirst"]))
            ]
            assert ordered, f"{note.id}: no 'code first' pair in the right order"
        for i, a in enumerate(dx):
            for b in dx[:i]:
                assert not _matches(a, _refs(info[b]["codeFirst"])), f"{note.id}: {a} must come before {b}"


def test_synthetic_ankle_case_and_variants() -> None:
    notes = _read(SYNTHETIC)
    by_id = {n.id: n for n in notes}
    ankle = by_id["synthetic-001-ankle-sprain"]
    dx = ankle.codes[0]
    assert re.fullmatch(r"S93\.4[0-9]1A", dx.code), "right ankle sprain, initial encounter"
    lines = {(c.code, c.modifiers) for c in ankle.codes if c.system != "ICD10CM"}
    assert ("73610", ("RT",)) in lines
    assert any(code.startswith("992") and "25" in mods for code, mods in lines)
    assert any(code.startswith("L") and mods == ("RT",) for code, mods in lines)
    assert "S82.-" in ankle.meta["forbidden"]
    assert any(c.role == "external-cause" and c.code.startswith("W") for c in ankle.codes)
    service_lines = [(c.code, c.modifiers) for n in notes for c in n.codes if c.system == "CPT"]
    assert ("73610", ("26", "RT")) in service_lines
    assert ("73600", ("RT",)) in service_lines


def test_synthetic_spans_point_at_their_evidence(notes: list[CorpusNote]) -> None:
    for note in notes:
        assert note.spans, note.id
        covered = {s.code for s in note.spans}
        assert covered == {c.code for c in note.codes}, f"{note.id}: codes without evidence span"


def _has(note: CorpusNote, test: Callable[[CorpusCode], bool]) -> bool:
    return any(test(c) for c in note.codes)


def _icd_range(low: str, high: str) -> Callable[[CorpusCode], bool]:
    return lambda c: c.system == "ICD10CM" and low <= c.code[:3] <= high


def _is_neoplasm(code: str) -> bool:
    """Neoplasm Table codes (C00-D49), personal history of malignancy (Z85) or an antineoplastic encounter (Z51.1-)."""
    return "C00" <= code[:3] <= "D49" or code.startswith(("Z85", "Z51.1"))


def _is_status(code: str) -> bool:
    """Status and long-term drug therapy Z codes (I.C.21.c.3), not history or family history."""
    return code.startswith("Z") and "Z14" <= code[:3] <= "Z99" and not "Z80" <= code[:3] <= "Z87"


# Screening encounter categories (I.C.21.c.5), antenatal screening included.
SCREENING = ("Z11", "Z12", "Z13", "Z36")
INJECTIONS = frozenset(
    {
        "96372",
        "20526",
        "20550",
        "20551",
        "20600",
        "20605",
        "20610",
        "20611",
        "11900",
        "90471",
        "96401",
        "96402",
        "67028",
    }
)
VACCINE_ADMIN = frozenset({"90460", "90471", "90473", "G0008", "G0009"})
# Modifiers that name a body side or part: sides, bilateral, fingers (F-), toes (T-), eyelids (E-).
ANATOMIC_MODIFIERS = frozenset(
    {"RT", "LT", "50", "FA", "TA", "E1", "E2", "E3", "E4"} | {f"F{i}" for i in range(10)} | {f"T{i}" for i in range(10)}
)


# What a note must contain for its rule label to be honest (rules not listed are checked elsewhere
# or are about what must be left out, which the forbidden list carries).
RULE_EVIDENCE = {
    "icd.7th": lambda n: _has(n, lambda c: c.system == "ICD10CM" and len(_key(c.code)) == 7),
    "icd.family_history": lambda n: _has(n, _icd_range("Z80", "Z84")),
    "icd.personal_history": lambda n: _has(n, _icd_range("Z85", "Z87")),
    "icd.external_cause": lambda n: _has(n, lambda c: c.role == "external-cause" and c.code[0] in "VWXY"),
    "icd.query": lambda n: bool(n.meta.get("queries")),
    "icd.principal": lambda n: n.setting == "inpatient",
    "icd.first_listed": lambda n: n.setting == "outpatient",
    "icd.uncertain.inpatient": lambda n: n.setting == "inpatient",
    "icd.uncertain.outpatient": lambda n: n.setting == "outpatient",
    "proc.imaging_views": lambda n: _has(n, lambda c: c.system == "CPT" and "70010" <= c.code <= "79999"),
    "proc.lab": lambda n: _has(n, lambda c: c.system == "CPT" and "80000" <= c.code <= "89999"),
    "proc.injection": lambda n: _has(n, lambda c: c.code in INJECTIONS),
    "supply.orthosis": lambda n: _has(n, lambda c: c.system == "HCPCS" and c.code[0] == "L"),
    "supply.dme": lambda n: _has(n, lambda c: c.system == "HCPCS" and c.code[0] == "E"),
    "em.time": lambda n: any(em["basis"] == "time" for em in _em_meta(n)),
    "em.mdm": lambda n: any(em["basis"] == "mdm" for em in _em_meta(n)),
    "em.new_vs_established": lambda n: any(em.get("patient") in ("new", "established") for em in _em_meta(n)),
    "mod.laterality": lambda n: _has(n, lambda c: bool(ANATOMIC_MODIFIERS & set(c.modifiers))),
    "mod.26_tc": lambda n: _has(n, lambda c: bool({"26", "TC"} & set(c.modifiers))),
    "mod.25": lambda n: _has(n, lambda c: "25" in c.modifiers),
    "mod.59": lambda n: _has(n, lambda c: "59" in c.modifiers),
    "proc.pointers": lambda n: _has(n, lambda c: bool(c.pointers)),
    "icd.drug_table": lambda n: _has(n, _icd_range("T36", "T50")),
    "icd.neoplasm": lambda n: _has(n, lambda c: c.system == "ICD10CM" and _is_neoplasm(c.code)),
    "icd.pregnancy": lambda n: _has(
        n, lambda c: c.system == "ICD10CM" and c.code.startswith(("O", "Z3A", "Z34", "Z39"))
    ),
    "icd.screening": lambda n: (
        _has(n, lambda c: c.system == "ICD10CM" and c.code[:3] in SCREENING)
        or any(_key(f)[:3] in SCREENING for f in n.meta["forbidden"])
    ),
    "icd.status": lambda n: _has(n, lambda c: c.system == "ICD10CM" and _is_status(c.code)),
    "em.preventive": lambda n: _has(n, lambda c: c.role == "em" and _em_kind(c.code) in ("preventive", "wellness")),
    "proc.vaccine": lambda n: _has(n, lambda c: c.code in VACCINE_ADMIN),
    "supply.drug": lambda n: _has(
        n, lambda c: c.system == "HCPCS" and c.code[0] in "JQ" and c.code in n.meta.get("units", {})
    ),
    "mod.33_pt": lambda n: _has(n, lambda c: bool({"33", "PT"} & set(c.modifiers))),
    "mod.57": lambda n: _has(n, lambda c: "57" in c.modifiers),
}


def test_synthetic_rule_labels_match_the_codes(
    notes: list[CorpusNote], icd: tuple[frozenset[str], frozenset[str]]
) -> None:
    every, billable = icd
    for note in notes:
        rules = set(note.meta["rules"])
        for rule, evidence in RULE_EVIDENCE.items():
            if rule in rules:
                assert evidence(note), f"{note.id}: labelled {rule} but nothing in it shows it"
        assert ("icd.query" in rules) == bool(note.meta.get("queries")), note.id
        if "icd.billable" in rules:
            headers = [
                f
                for f in note.meta["forbidden"]
                if "." in f and not f.endswith(".-") and _key(f) in every and _key(f) not in billable
            ]
            assert headers, f"{note.id}: icd.billable needs a forbidden non-billable code"


SAMPLES = SYNTHETIC.parent.parent / "samples"


@pytest.mark.parametrize(
    ("name", "headings"),
    [
        ("ankle_sprain.txt", ("CHIEF COMPLAINT", "HPI", "EXAM", "IMAGING", "ASSESSMENT/PLAN")),
        ("diabetes_follow_up.txt", ("CHIEF COMPLAINT", "HPI", "EXAM", "ASSESSMENT/PLAN")),
        ("ed_chest_pain.txt", ("CHIEF COMPLAINT", "HPI", "EXAM", "IMPRESSION", "DISPOSITION")),
        (
            "inpatient_discharge_summary.txt",
            ("DISCHARGE DIAGNOSES", "HOSPITAL COURSE", "DISCHARGE MEDICATIONS"),
        ),
    ],
)
def test_synthetic_samples_are_plain_notes(name: str, headings: tuple[str, ...]) -> None:
    data = (SAMPLES / name).read_bytes()
    text = data.decode("utf-8")
    assert 1000 <= len(data) <= 3000, f"{name}: {len(data)} bytes"
    for heading in headings:
        assert re.search(rf"^{re.escape(heading)}:", text, re.MULTILINE), f"{name}: no {heading}"
