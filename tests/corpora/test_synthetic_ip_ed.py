"""Checks of the inpatient, ED, observation and infusion notes (``us_inpatient_ed.jsonl``).

The file is an answer key like ``encounters.jsonl`` (``corpora/synthetic/README.md``), so the same
checks apply to every note: billable FY2026 codes, forbidden codes that are real and never
expected, claim order and roles, Excludes1/Excludes2/"code first"/"use additional code" claims
that are printed in the FY2026 tabular list, the modifier 25 policy, evidence spans for every
code. It adds what this file carries beyond the office notes: hospital E/M (initial, later-day,
same-day, discharge), critical care time with its add-on units, ED 99281, infusion lines with
drug units, and ``meta.specialty``, ``meta.chapters`` and ``meta.split`` (about a quarter held out).
Each check is parametrised over the notes, so a failure names the note.
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
from pipeline.locations import default_data_dir

CORPUS = Path(__file__).resolve().parents[2] / "corpora" / "synthetic" / "us_inpatient_ed.jsonl"
NOTES = read_corpus(CORPUS)
IDS = [n.id for n in NOTES]

RULE_IDS = frozenset(
    {
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
        "icd.status",
        "supply.drug",
    }
)
META_KEYS = frozenset(
    {
        "source",
        "title",
        "encounter",
        "specialty",
        "chapters",
        "split",
        "rules",
        "forbidden",
        "em",
        "units",
        "queries",
        "notes",
    }
)
ENCOUNTERS = frozenset({"ed", "inpatient", "observation", "hospital", "procedure"})
SPECIALTIES = frozenset(
    {
        "infectious-disease",
        "cardiology",
        "pulmonology",
        "nephrology",
        "gastroenterology",
        "neurology",
        "endocrinology",
        "toxicology",
        "trauma",
        "burns",
        "obstetrics",
        "oncology",
        "psychiatry",
        "wound-care",
        "hospital-medicine",
        "hematology",
        "emergency-medicine",
        "critical-care",
    }
)
SECTION_RE = re.compile(r"^(I\.A|I\.B|I\.C\.([1-9]|1[0-9]|2[012])|II|III|IV)$")

# ED visits by MDM (99281 needs no MDM level); hospital inpatient or observation care (CPT 2023)
# by MDM or by total time on the date; critical care by time.
ED_LEVELS = {"minimal": "99281", "straightforward": "99282", "low": "99283", "moderate": "99284", "high": "99285"}
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
MDM_INDEX = {"straightforward": 0, "low": 1, "moderate": 2, "high": 3}

_CODE = r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?"
_RANGE = re.compile(rf"\b({_CODE})\s*-\s*({_CODE})")
_SINGLE = re.compile(rf"\b({_CODE})")


def _key(code: str) -> str:
    return code.replace(".", "").upper()


@lru_cache(maxsize=1)
def _icd() -> tuple[frozenset[str], frozenset[str]]:
    """(every ICD-10-CM code and header, billable leaves), undotted, FY2026."""
    path = default_data_dir() / "icd10cm" / "code-list-April-2026.txt"
    codes = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    codes = [c for c in codes if c and "-" not in c and not c.isdigit()]
    leaves = {c for c, nxt in zip(codes, [*codes[1:], ""], strict=True) if not nxt.startswith(c)}
    return frozenset(codes), frozenset(leaves)


@lru_cache(maxsize=1)
def _hcpcs() -> dict[str, str]:
    """HCPCS code -> termination date ('' when active)."""
    path = default_data_dir() / "hcpcs" / "HCPC2020_codes_parsed.tsv"
    with open(path, encoding="utf-8", newline="") as handle:
        return {row["code"]: row["term_dt"] for row in csv.DictReader(handle, delimiter="\t") if row["kind"] == "code"}


@lru_cache(maxsize=1)
def _tabular() -> dict[str, dict[str, list[str]]]:
    """Undotted code -> instruction kind -> notes, chapter/section/ancestor notes merged in."""
    root = ET.parse(default_data_dir() / "icd10cm" / "icd10c-tabular-April-1-2026.xml").getroot()
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


# "T36-T65 with fifth or sixth character 1-4": the intent character of a drug/chemical code
# (its last character before the 7th) restricts which codes a note names.
_INTENT = re.compile(r"with (?:fifth or sixth|final) character ([0-9])(?:\s*-\s*([0-9]))?(?:\s+or\s+([0-9]))?")


Ref = tuple[str, str, frozenset[str] | None]


def _refs(notes: list[str]) -> list[Ref]:
    """Code references of instructional notes as undotted (low, high, intents) prefix ranges."""
    found: list[Ref] = []
    for note in notes:
        intents: frozenset[str] | None = None
        qualifier = _INTENT.search(note)
        if qualifier:
            low_digit, high_digit, other = qualifier.groups()
            digits = {str(d) for d in range(int(low_digit), int(high_digit or low_digit) + 1)}
            intents = frozenset(digits | ({other} if other else set()))
        found += [(_key(low), _key(high), intents) for low, high in _RANGE.findall(note)]
        found += [(_key(code), _key(code), intents) for code in _SINGLE.findall(_RANGE.sub(" ", note))]
    return found


def _intent(key: str) -> str:
    """The intent character of a T36-T65 code: the last character before the 7th and its placeholders.

    T402X5A -> 5, T5801XA -> 1, T4271 -> 1.
    """
    return (key[:-1] if len(key) == 7 else key).rstrip("X")[-1]


def _matches(code: str, refs: list[Ref]) -> bool:
    key = _key(code)
    return any(
        key[: len(low)] >= low and key[: len(high)] <= high and (intents is None or _intent(key) in intents)
        for low, high, intents in refs
    )


def _notes_for(code: str) -> dict[str, list[str]]:
    key, tabular = _key(code), _tabular()
    for end in range(len(key), 2, -1):
        if key[:end] in tabular:
            return tabular[key[:end]]
    raise AssertionError(f"{code} not in the tabular list")


def _forbidden_matches(entry: str, code: str) -> bool:
    if entry.endswith(".-"):
        return _key(code).startswith(_key(entry[:-2]))
    return _key(entry) == _key(code)


def _icd_forbidden(note: CorpusNote) -> list[str]:
    return [
        f[:-2] if f.endswith(".-") else f
        for f in note.meta["forbidden"]
        if f.endswith(".-") or normalize_code(f)[0] == "ICD10CM"
    ]


# Codes outside a chapter whose use a chapter guideline rules (HIV status and resistance I.C.1.a/c,
# SIRS and severe sepsis I.C.1.d, weeks of gestation and delivery outcome I.C.15, chemotherapy
# encounters, cancer history and receptor status I.C.2).
SECTION_EXTRA = {
    "Z21": "I.C.1",
    "Z16": "I.C.1",
    "R65.1": "I.C.1",
    "R65.2": "I.C.1",
    "Z3A": "I.C.15",
    "Z37": "I.C.15",
    "Z51.1": "I.C.2",
    "Z85": "I.C.2",
    "Z17": "I.C.2",
}


def _sections_of(code: str) -> set[str]:
    """The chapter guidelines (I.C.n) that rule an ICD-10-CM code; U07.1 (COVID-19) is I.C.1.g."""
    letter, number = code[0], int(code[1:3]) if code[1:3].isdigit() else 0
    extra = {section for prefix, section in SECTION_EXTRA.items() if code.startswith(prefix)}
    if code.startswith("U07"):
        return {"I.C.1", "I.C.22"} | extra
    if letter in "AB":
        return {"I.C.1"} | extra
    if letter == "C" or (letter == "D" and number < 50):
        return {"I.C.2"} | extra
    if letter == "H":
        return {"I.C.7" if number < 60 else "I.C.8"} | extra
    table = {"D": 3, "E": 4, "F": 5, "G": 6, "I": 9, "J": 10, "K": 11, "L": 12, "M": 13, "N": 14, "O": 15}
    table |= {"P": 16, "Q": 17, "R": 18, "S": 19, "T": 19, "V": 20, "W": 20, "X": 20, "Y": 20, "Z": 21}
    return {f"I.C.{table[letter]}"} | extra


def _em_lines(note: CorpusNote) -> list[CorpusCode]:
    return [c for c in note.codes if c.role == "em"]


def _has(note: CorpusNote, test: Callable[[CorpusCode], bool]) -> bool:
    return any(test(c) for c in note.codes)


def _icd_range(low: str, high: str) -> Callable[[CorpusCode], bool]:
    return lambda c: c.system == "ICD10CM" and low <= c.code[:3] <= high


RULE_EVIDENCE: dict[str, Callable[[CorpusNote], bool]] = {
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
    "icd.drug_table": lambda n: _has(n, _icd_range("T36", "T50")),
    "icd.neoplasm": lambda n: _has(
        n, lambda c: c.system == "ICD10CM" and ("C00" <= c.code[:3] <= "D49" or c.code.startswith(("Z85", "Z51.1")))
    ),
    "icd.pregnancy": lambda n: _has(n, lambda c: c.system == "ICD10CM" and c.code.startswith(("O", "Z3A", "Z37"))),
    "icd.status": lambda n: _has(
        n,
        lambda c: (
            c.system == "ICD10CM"
            and c.code[0] == "Z"
            and "Z14" <= c.code[:3] <= "Z99"
            and not "Z80" <= c.code[:3] <= "Z87"
        ),
    ),
    "supply.drug": lambda n: _has(
        n, lambda c: c.system == "HCPCS" and c.code[0] in "JQ" and c.code in n.meta.get("units", {})
    ),
}


def test_synthetic_ip_ed_file_size_ids_and_split() -> None:
    assert len(NOTES) >= 130
    numbers = []
    for note in NOTES:
        match = re.fullmatch(r"synthetic-(2\d{3})-[a-z0-9]+(?:-[a-z0-9]+)*", note.id)
        assert match, note.id
        numbers.append(int(match.group(1)))
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    specialties = Counter(n.meta["specialty"] for n in NOTES)
    assert len(specialties) >= 10, specialties
    holdout = [n for n in NOTES if n.meta["split"] == "holdout"]
    assert 0.2 <= len(holdout) / len(NOTES) <= 0.3, len(holdout)
    assert len({n.meta["specialty"] for n in holdout}) >= 10
    encounters = Counter(n.meta["encounter"] for n in NOTES)
    assert encounters["inpatient"] >= 60 and encounters["ed"] >= 30, encounters


def test_synthetic_ip_ed_every_rule_in_at_least_two_notes() -> None:
    counts = Counter(rule for n in NOTES for rule in n.meta["rules"])
    assert not set(counts) - RULE_IDS, set(counts) - RULE_IDS
    assert not {r: c for r, c in counts.items() if c < 2}


@pytest.mark.parametrize("note", NOTES, ids=IDS)
def test_synthetic_ip_ed_meta(note: CorpusNote) -> None:
    meta = note.meta
    assert set(meta) <= META_KEYS, set(meta) - META_KEYS
    assert meta["source"] == "synthetic" and meta["title"] and meta["notes"]
    assert meta["encounter"] in ENCOUNTERS
    assert (meta["encounter"] == "inpatient") == (note.setting == "inpatient")
    assert meta["specialty"] in SPECIALTIES
    assert meta["split"] in ("dev", "holdout")
    chapters = meta["chapters"]
    assert chapters and len(set(chapters)) == len(chapters)
    assert all(SECTION_RE.match(s) for s in chapters), chapters
    assert re.search(r"\b(I\.[ABC][.0-9a-z]*|II(\.[A-H])?|III|IV(\.[A-Z])?)\b", meta["notes"]), "no guideline section"


@pytest.mark.parametrize("note", NOTES, ids=IDS)
def test_synthetic_ip_ed_chapters_are_exercised(note: CorpusNote) -> None:
    """Every chapter guideline the note names has a code of that chapter among its codes."""
    dx = note.codes_of("ICD10CM")
    sections = set().union(*(_sections_of(c) for c in dx))
    assert _sections_of(dx[0]) & set(note.meta["chapters"]), "the first-listed/principal code's chapter is not named"
    for section in note.meta["chapters"]:
        if section.startswith("I.C."):
            assert section in sections, f"{section} named but no code of that chapter"
    if "II" in note.meta["chapters"] or "III" in note.meta["chapters"]:
        assert note.setting == "inpatient"
    assert ("IV" in note.meta["chapters"]) == (note.setting == "outpatient"), (
        "Section IV is exactly for outpatient care"
    )


@pytest.mark.parametrize("note", NOTES, ids=IDS)
def test_synthetic_ip_ed_codes_are_billable_and_real(note: CorpusNote) -> None:
    every, billable = _icd()
    for code in note.codes_of("ICD10CM"):
        assert _key(code) in billable, f"{code} is not a billable FY2026 ICD-10-CM code"
    for entry in note.meta["forbidden"]:
        if entry.endswith(".-") or "." in entry or normalize_code(entry)[0] == "ICD10CM":
            stem = _key(entry[:-2] if entry.endswith(".-") else entry)
            assert stem in every, f"forbidden {entry} is not an ICD-10-CM code or category"
    for query in note.meta.get("queries", []):
        assert any(c.startswith(_key(query["code_prefix"])) for c in billable), query
        assert query["question"].strip()
    hcpcs = _hcpcs()
    for code in note.codes_of("HCPCS"):
        assert code in hcpcs, f"{code} not in the HCPCS file"
        assert not hcpcs[code], f"{code} is terminated ({hcpcs[code]})"


@pytest.mark.parametrize("note", NOTES, ids=IDS)
def test_synthetic_ip_ed_forbidden_never_expected(note: CorpusNote) -> None:
    forbidden = note.meta["forbidden"]
    assert forbidden and len(set(forbidden)) == len(forbidden)
    for entry in forbidden:
        clash = [c.code for c in note.codes if _forbidden_matches(entry, c.code)]
        assert not clash, f"forbidden {entry} is also expected ({clash})"
    for query in note.meta.get("queries", []):
        assert not [c for c in note.codes_of("ICD10CM") if c.startswith(query["code_prefix"])]


@pytest.mark.parametrize("note", NOTES, ids=IDS)
def test_synthetic_ip_ed_order_roles_pointers_units(note: CorpusNote) -> None:
    first = note.codes[0]
    expected_role = "principal" if note.setting == "inpatient" else "first-listed"
    assert (first.system, first.role) == ("ICD10CM", expected_role)
    roles = [c.role for c in note.codes]
    assert roles.count(expected_role) == 1 and None not in roles
    systems = [c.system for c in note.codes]
    last_dx = max(i for i, s in enumerate(systems) if s == "ICD10CM")
    assert all(s == "ICD10CM" for s in systems[: last_dx + 1]), "service line among diagnoses"
    assert all(s != "ICD10CM" for s in systems[last_dx + 1 :]), "diagnosis after service lines"
    for code in note.codes:
        if code.system in ("CPT", "HCPCS"):
            assert code.pointers, f"{code.code} has no diagnosis pointer"
    units = note.meta.get("units", {})
    assert set(units) <= {c.code for c in note.codes}
    assert all(isinstance(v, int) and v >= 1 for v in units.values())
    assert bool(_em_lines(note)) == ("em" in note.meta), "E/M lines and meta.em come together"
    encounter = note.meta["encounter"]
    if encounter == "inpatient":
        assert not note.codes_of("CPT") and not note.codes_of("HCPCS"), "facility diagnosis codes only"
    elif encounter == "procedure":
        assert not _em_lines(note) and note.codes_of("CPT"), "service lines without a visit"
        for drug in note.codes_of("HCPCS"):
            if drug.startswith("J"):
                assert drug in units, f"drug {drug} without billing units"
    elif encounter == "ed":
        # README decision 4: a procedure that is the whole visit is reported without an E/M.
        assert _em_lines(note) or note.codes_of("CPT"), "ED note without any service line"
    else:
        assert _em_lines(note), f"{encounter} note without an E/M line"


@pytest.mark.parametrize("note", [n for n in NOTES if _em_lines(n)], ids=[n.id for n in NOTES if _em_lines(n)])
def test_synthetic_ip_ed_em_level(note: CorpusNote) -> None:
    em, lines = note.meta["em"], _em_lines(note)
    codes = [c.code for c in lines]
    place = em["place"]
    if place == "critical-care":
        minutes = em["minutes"]
        assert em["basis"] == "time" and minutes >= 30 and f"{minutes} minutes" in note.text
        extra = (minutes - 45) // 30 if minutes >= 75 else 0
        assert codes == ["99291"] + (["99292"] if extra else []), codes
        assert note.meta.get("units", {}).get("99292", 0) == extra
        return
    assert len(lines) == 1, codes
    code = codes[0]
    if place == "ed":
        assert note.meta["encounter"] == "ed" and em["basis"] == "mdm" and "patient" not in em
        assert code == ED_LEVELS[em["mdm"]]
        return
    assert place == "hospital" and note.meta["encounter"] in ("hospital", "observation"), place
    service = em["service"]
    if service == "discharge":
        minutes = em["minutes"]
        assert em["basis"] == "time" and f"{minutes} minutes" in note.text
        assert code == ("99239" if minutes > 30 else "99238")
    elif em["basis"] == "time":
        minutes = em["minutes"]
        assert f"{minutes} minutes" in note.text
        assert code == next(level for floor, level in HOSPITAL_TIME[service] if minutes >= floor)
    else:
        assert em["basis"] == "mdm"
        assert code == HOSPITAL_MDM[service][MDM_INDEX[em["mdm"]]]


@pytest.mark.parametrize("note", [n for n in NOTES if _em_lines(n)], ids=[n.id for n in NOTES if _em_lines(n)])
def test_synthetic_ip_ed_modifier_25_policy(note: CorpusNote) -> None:
    """25 on the visit exactly when another non-laboratory service is reported (README decision 4)."""
    lines = _em_lines(note)
    others = [
        c
        for c in note.codes
        if c.system in ("CPT", "HCPCS") and c.role != "em" and not ("80000" <= c.code <= "89999" or c.code == "36415")
    ]
    assert ("25" in lines[0].modifiers) == bool(others), [c.code for c in others]
    assert all("25" not in c.modifiers for c in lines[1:]), "25 belongs on the first E/M line only"


@pytest.mark.parametrize("note", NOTES, ids=IDS)
def test_synthetic_ip_ed_instructional_notes_are_real(note: CorpusNote) -> None:
    """No two expected Excludes1 partners; claimed tabular relations exist; code-first order kept."""
    dx = note.codes_of("ICD10CM")
    info = {c: _notes_for(c) for c in dx}
    for a in dx:
        for b in dx:
            assert a == b or not _matches(b, _refs(info[a]["excludes1"])), f"{a} Excludes1 {b}"
    rules = set(note.meta["rules"])
    forbidden = _icd_forbidden(note)
    if "icd.excludes1" in rules:
        assert any(
            _matches(f, _refs(info[a]["excludes1"])) or _matches(a, _refs(_notes_for(f)["excludes1"]))
            for a in dx
            for f in forbidden
        ), "no forbidden Excludes1 partner of an expected code"
    if "icd.excludes2" in rules:
        assert any(_matches(b, _refs(info[a]["excludes2"])) for a in dx for b in dx if a != b)
    if "icd.use_additional" in rules:
        assert any(_matches(b, _refs(info[a]["useAdditionalCode"])) for a in dx for b in dx if a != b)
    if "icd.code_first" in rules:
        assert any(_matches(a, _refs(info[b]["codeFirst"])) for i, a in enumerate(dx) for b in dx[i + 1 :])
    for i, a in enumerate(dx):
        for b in dx[:i]:
            assert not _matches(a, _refs(info[b]["codeFirst"])), f"{a} must come before {b}"


@pytest.mark.parametrize("note", NOTES, ids=IDS)
def test_synthetic_ip_ed_spans_and_rule_labels(note: CorpusNote) -> None:
    assert {s.code for s in note.spans} == {c.code for c in note.codes}, "codes without evidence span"
    assert all(note.text[s.start : s.end].strip() for s in note.spans)
    rules = set(note.meta["rules"])
    for rule, evidence in RULE_EVIDENCE.items():
        if rule in rules:
            assert evidence(note), f"labelled {rule} but nothing in it shows it"
    assert ("icd.query" in rules) == bool(note.meta.get("queries"))
    if "icd.billable" in rules:
        every, billable = _icd()
        assert [
            f
            for f in note.meta["forbidden"]
            if "." in f and not f.endswith(".-") and _key(f) in every and _key(f) not in billable
        ], "icd.billable needs a forbidden non-billable code"
