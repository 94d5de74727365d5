"""The diagnosis rules as data: ``encounter_diagnoses.json``, read strictly once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.encounter.rule_data import CodeSet, Phrases, RuleReader
from pipeline.errors import RuleFileError

DIAGNOSES_SCHEMA = "codesuggest.encounter-diagnoses/1"
DIAGNOSES_FILE = "encounter_diagnoses.json"


@dataclass(frozen=True, slots=True)
class Mapping:
    """Conditions -> a history code."""

    conditions: CodeSet
    code: str
    why: str


@dataclass(frozen=True, slots=True)
class Integral:
    """Symptoms routine to some diagnoses (I.B.5)."""

    symptoms: CodeSet
    diagnoses: CodeSet
    why: str


@dataclass(frozen=True, slots=True)
class Combination:
    """Codes that together are reported as one combination code."""

    all_of: tuple[CodeSet, ...]
    none_of: tuple[CodeSet, ...]
    code: str | None
    remove: CodeSet
    why: str


@dataclass(frozen=True, slots=True)
class Redirect:
    """A code that, with another condition in the same statement, becomes another code."""

    code: CodeSet
    with_: CodeSet
    to: str
    history: bool
    why: str


@dataclass(frozen=True, slots=True)
class QueryRule:
    """When the provider must be asked instead of a code being assigned."""

    kind: str
    phrases: Phrases
    code_prefix: str
    question: str
    treatment: Phrases
    why: str


@dataclass(frozen=True, slots=True)
class DiagnosisRules:
    """The contents of ``encounter_diagnoses.json``."""

    personal_history: tuple[Mapping, ...]
    family_history: tuple[Mapping, ...]
    chronic: CodeSet
    chronic_cues: Phrases
    chronic_why: str
    integral: tuple[Integral, ...]
    combinations: tuple[Combination, ...]
    redirects: tuple[Redirect, ...]
    default_titles: tuple[str, ...]
    companions: tuple[tuple[str, Phrases], ...]
    companion_negation: Phrases
    companion_only: CodeSet
    bmi_patterns: tuple[re.Pattern[str], ...]
    bmi_adult_age: int
    bmi_bands: tuple[tuple[float, float, str], ...]
    not_reported: CodeSet
    not_reported_why: str
    queries: tuple[QueryRule, ...]
    conflict_question: str
    seventh: dict[str, Phrases]
    external_connectors: frozenset[str]
    external_default_levels: tuple[str, ...]
    external_why: str
    source: str = DIAGNOSES_FILE


def rule_codes(rules: DiagnosisRules) -> set[str]:
    """Every ICD-10-CM code the diagnosis rules can add to a claim (history, combination, redirect,
    companion and BMI codes)."""
    codes = {m.code for m in (*rules.personal_history, *rules.family_history)}
    codes.update(c.code for c in rules.combinations if c.code is not None)
    codes.update(r.to for r in rules.redirects)
    codes.update(code for code, _ in rules.companions)
    codes.update(band[2] for band in rules.bmi_bands)
    return codes


_SEVENTH_KEYS = ("sequela", "subsequent", "initial", "open", "open_severe", "closed", "delayed", "nonunion", "malunion")


def load_diagnosis_rules(path: Path | None = None) -> DiagnosisRules:
    """Load and check ``encounter_diagnoses.json`` (or ``path``).

    Args:
        path: another file to read instead of the packaged one.

    Returns:
        The rules.

    Raises:
        RuleFileError: the file is invalid; the message names file, line and place.
    """
    sections = (
        "personal_history",
        "family_history",
        "current_when_treated",
        "integral_symptoms",
        "combinations",
        "redirects",
        "default_titles",
        "companions",
        "companion_negation",
        "companion_only",
        "bmi",
        "not_reported",
        "queries",
        "conflict_question",
        "seventh",
        "external_causes",
    )
    r = RuleReader.open(DIAGNOSES_FILE, DIAGNOSES_SCHEMA, sections, path)

    def mappings(key: str) -> tuple[Mapping, ...]:
        out = []
        for _, e, p in r.entries(key):
            r.keys(e, p, {"conditions", "code", "why"})
            out.append(
                Mapping(
                    r.codes(e["conditions"], (*p, "conditions")),
                    r.icd_code(e["code"], (*p, "code")),
                    r.text(e["why"], (*p, "why")),
                )
            )
        return tuple(out)

    cw = r.section_object("current_when_treated", {"conditions", "cues", "why"})
    integral = []
    for _, e, p in r.entries("integral_symptoms"):
        r.keys(e, p, {"symptoms", "diagnoses", "why"})
        integral.append(
            Integral(
                r.codes(e["symptoms"], (*p, "symptoms")),
                r.codes(e["diagnoses"], (*p, "diagnoses")),
                r.text(e["why"], (*p, "why")),
            )
        )
    combinations = []
    for _, e, p in r.entries("combinations"):
        r.keys(e, p, {"all_of", "remove", "why"}, {"none_of", "code"})
        for key in ("all_of", "none_of"):
            if not isinstance(e.get(key, []), list):
                raise RuleFileError(f"{r.where(*p, key)}: expected a list of code lists")
        combinations.append(
            Combination(
                tuple(r.codes(v, (*p, "all_of", i)) for i, v in enumerate(e["all_of"])),
                tuple(r.codes(v, (*p, "none_of", i)) for i, v in enumerate(e.get("none_of", []))),
                r.icd_code(e["code"], (*p, "code")) if "code" in e else None,
                r.codes(e["remove"], (*p, "remove")),
                r.text(e["why"], (*p, "why")),
            )
        )
    redirects = []
    for _, e, p in r.entries("redirects"):
        r.keys(e, p, {"code", "with", "to", "history", "why"})
        if not isinstance(e["history"], bool):
            raise RuleFileError(f"{r.where(*p, 'history')}: expected true or false")
        redirects.append(
            Redirect(
                r.codes(e["code"], (*p, "code")),
                r.codes(e["with"], (*p, "with")),
                r.icd_code(e["to"], (*p, "to")),
                e["history"],
                r.text(e["why"], (*p, "why")),
            )
        )
    companions = []
    for _, e, p in r.entries("companions"):
        r.keys(e, p, {"code", "phrases"})
        companions.append((r.icd_code(e["code"], (*p, "code")), Phrases(r.phrases(e["phrases"], (*p, "phrases")))))
    bmi = r.section_object("bmi", {"patterns", "adult_age", "bands"})
    bands = []
    for i, band in enumerate(bmi["bands"] if isinstance(bmi["bands"], list) else []):
        p = ("bmi", "bands", i)
        r.keys(band, p, {"min", "max", "code"})
        lo, hi = r.number(band["min"], (*p, "min"), minimum=0), r.number(band["max"], (*p, "max"), minimum=0)
        if hi < lo:
            raise RuleFileError(f"{r.where(*p)}: max below min")
        bands.append((lo, hi, r.icd_code(band["code"], (*p, "code"))))
    if not bands:
        raise RuleFileError(f"{r.where('bmi', 'bands')}: expected a non-empty list of bands")
    nr = r.section_object("not_reported", {"codes", "why"})
    queries = []
    for _, e, p in r.entries("queries"):
        r.keys(e, p, {"kind", "phrases", "code_prefix", "question", "why"}, {"treatment"})
        kind = r.choice(e["kind"], (*p, "kind"), ("term", "lab"))
        if kind == "lab" and "treatment" not in e:
            raise RuleFileError(f"{r.where(*p)}: a 'lab' query needs 'treatment' phrases")
        queries.append(
            QueryRule(
                kind,
                Phrases(r.phrases(e["phrases"], (*p, "phrases"))),
                r.text(e["code_prefix"], (*p, "code_prefix")),
                r.text(e["question"], (*p, "question")),
                Phrases(r.phrases(e.get("treatment", []), (*p, "treatment"), allow_empty=True)),
                r.text(e["why"], (*p, "why")),
            )
        )
    sev = r.section_object("seventh", set(_SEVENTH_KEYS))
    ext = r.section_object("external_causes", {"connectors", "default_levels", "why"})
    return DiagnosisRules(
        personal_history=mappings("personal_history"),
        family_history=mappings("family_history"),
        chronic=r.codes(cw["conditions"], ("current_when_treated", "conditions")),
        chronic_cues=Phrases(r.phrases(cw["cues"], ("current_when_treated", "cues"))),
        chronic_why=r.text(cw["why"], ("current_when_treated", "why")),
        integral=tuple(integral),
        combinations=tuple(combinations),
        redirects=tuple(redirects),
        default_titles=r.phrases(r.section("default_titles"), ("default_titles",)),
        companions=tuple(companions),
        companion_negation=Phrases(r.phrases(r.section("companion_negation"), ("companion_negation",))),
        companion_only=r.codes(r.section("companion_only"), ("companion_only",)),
        bmi_patterns=r.patterns(bmi["patterns"], ("bmi", "patterns")),
        bmi_adult_age=int(r.number(bmi["adult_age"], ("bmi", "adult_age"), integer=True, minimum=0)),
        bmi_bands=tuple(bands),
        not_reported=r.codes(nr["codes"], ("not_reported", "codes")),
        not_reported_why=r.text(nr["why"], ("not_reported", "why")),
        queries=tuple(queries),
        conflict_question=r.text(r.section("conflict_question"), ("conflict_question",)),
        seventh={k: Phrases(r.phrases(sev[k], ("seventh", k))) for k in _SEVENTH_KEYS},
        external_connectors=frozenset(r.phrases(ext["connectors"], ("external_causes", "connectors"))),
        external_default_levels=r.phrases(ext["default_levels"], ("external_causes", "default_levels")),
        external_why=r.text(ext["why"], ("external_causes", "why")),
        source=r.source,
    )
