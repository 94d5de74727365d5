"""Checks of the synthetic encounter notes against the reference code sets and the tabular list.

The notes are the expected-answer set for encounter-level coding, so every code must be real and
billable, every rule must be exercised by at least two notes, and the instructional notes the
files claim to exercise (Excludes1/2, code first, use additional code) must really be printed in
the FY2026 tabular list.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import pytest

from corpora.format import CorpusCode, CorpusNote, read_corpus
from pipeline.kb.model import normalize_code

SYNTHETIC = Path(__file__).resolve().parents[2] / "corpora" / "synthetic" / "encounters.jsonl"

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
}

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
_CODE = r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?"
_RANGE = re.compile(rf"\b({_CODE})\s*-\s*({_CODE})")
_SINGLE = re.compile(rf"\b({_CODE})")


@pytest.fixture(scope="module")
def notes() -> list[CorpusNote]:
    return read_corpus(SYNTHETIC)


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


def _key(code: str) -> str:
    return code.replace(".", "").upper()


def _refs(notes: list[str]) -> list[tuple[str, str]]:
    """Code references of instructional notes as undotted (low, high) prefix ranges."""
    found = []
    for note in notes:
        found += [(_key(low), _key(high)) for low, high in _RANGE.findall(note)]
        found += [(_key(code), _key(code)) for code in _SINGLE.findall(_RANGE.sub(" ", note))]
    return found


def _matches(code: str, refs: list[tuple[str, str]]) -> bool:
    key = _key(code)
    return any(key[: len(low)] >= low and key[: len(high)] <= high for low, high in refs)


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


def test_synthetic_file_is_valid_and_large_enough(notes: list[CorpusNote]) -> None:
    assert len(notes) >= 32
    assert all(n.id.startswith("synthetic-") for n in notes)
    assert {n.setting for n in notes} == {"inpatient", "outpatient"}
    assert sum(1 for n in notes if n.setting == "inpatient") >= 4
    for note in notes:
        assert set(note.meta) <= META_KEYS, note.id
        assert note.meta["source"] == "synthetic"
        assert note.meta["title"] and note.meta["notes"], note.id
        assert note.meta["encounter"] in ("office", "urgent-care", "ed", "inpatient"), note.id
        assert (note.meta["encounter"] == "inpatient") == (note.setting == "inpatient"), note.id


def test_synthetic_every_rule_in_at_least_two_notes(notes: list[CorpusNote]) -> None:
    counts = Counter(rule for n in notes for rule in n.meta["rules"])
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


def _em_line(note: CorpusNote) -> CorpusCode | None:
    lines = [c for c in note.codes if c.role == "em"]
    assert len(lines) <= 1, note.id
    return lines[0] if lines else None


def test_synthetic_em_level_matches_time_or_mdm(notes: list[CorpusNote]) -> None:
    for note in notes:
        line = _em_line(note)
        em = note.meta.get("em")
        assert (line is None) == (em is None), f"{note.id}: E/M line and meta.em must come together"
        if line is None or em is None:
            continue
        if line.code.startswith("9928"):
            assert em.get("place") == "ed" and em["basis"] == "mdm", note.id
            assert line.code == MDM_LEVELS["ed"][em["mdm"]], note.id
            continue
        patient = em["patient"]
        assert line.code[:4] == ("9920" if patient == "new" else "9921"), f"{note.id}: new vs established"
        if em["basis"] == "time":
            minutes = em["minutes"]
            level = next(code for floor, code in TIME_LEVELS[patient] if minutes >= floor)
            assert line.code == level, f"{note.id}: {minutes} min -> {level}, not {line.code}"
            assert f"{minutes} minutes" in note.text, note.id
        else:
            assert em["basis"] == "mdm", note.id
            assert line.code == MDM_LEVELS[patient][em["mdm"]], note.id


def test_synthetic_modifier_25_policy(notes: list[CorpusNote]) -> None:
    """25 on the E/M exactly when another non-laboratory service is reported (see README)."""
    for note in notes:
        line = _em_line(note)
        if line is None:
            continue
        others = [
            c
            for c in note.codes
            if c.system in ("CPT", "HCPCS")
            and c is not line
            and not ("80000" <= c.code <= "89999" or c.code == "36415")
        ]
        assert ("25" in line.modifiers) == bool(others), f"{note.id}: 25 with {[c.code for c in others]}"


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


def test_synthetic_ankle_case_and_variants(notes: list[CorpusNote]) -> None:
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
    "proc.injection": lambda n: _has(n, lambda c: c.code in ("96372", "20610", "11900", "90471")),
    "supply.orthosis": lambda n: _has(n, lambda c: c.system == "HCPCS" and c.code[0] == "L"),
    "supply.dme": lambda n: _has(n, lambda c: c.system == "HCPCS" and c.code[0] == "E"),
    "em.time": lambda n: n.meta.get("em", {}).get("basis") == "time",
    "em.mdm": lambda n: n.meta.get("em", {}).get("basis") == "mdm",
    "em.new_vs_established": lambda n: n.meta.get("em", {}).get("patient") in ("new", "established"),
    "mod.laterality": lambda n: _has(n, lambda c: bool({"RT", "LT", "50"} & set(c.modifiers))),
    "mod.26_tc": lambda n: _has(n, lambda c: bool({"26", "TC"} & set(c.modifiers))),
    "mod.25": lambda n: _has(n, lambda c: "25" in c.modifiers),
    "mod.59": lambda n: _has(n, lambda c: "59" in c.modifiers),
    "proc.pointers": lambda n: _has(n, lambda c: bool(c.pointers)),
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
