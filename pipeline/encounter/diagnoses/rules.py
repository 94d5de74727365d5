"""The diagnosis rules as data: ``encounter_diagnoses.json``, read strictly once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from pipeline.encounter.rule_data import CodeSet, IcdCode, IcdCodes, Phrases
from pipeline.rulefile import (
    NonNegativeFloat,
    NonNegativeInt,
    OptionalPhrases,
    PhraseList,
    RegexList,
    RuleFile,
    RuleModel,
    Text,
    load_rules,
    read_rule_text,
    schema_field,
)

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


class _Mapping(RuleModel):
    conditions: IcdCodes
    code: IcdCode
    why: Text


class _CurrentWhenTreated(RuleModel):
    conditions: IcdCodes
    cues: PhraseList
    why: Text


class _Integral(RuleModel):
    symptoms: IcdCodes
    diagnoses: IcdCodes
    why: Text


class _Combination(RuleModel):
    all_of: tuple[IcdCodes, ...]
    none_of: tuple[IcdCodes, ...] = ()
    code: IcdCode | None = None
    remove: IcdCodes
    why: Text


class _Redirect(RuleModel):
    code: IcdCodes
    with_: IcdCodes = Field(alias="with")
    to: IcdCode
    history: bool
    why: Text


class _Companion(RuleModel):
    code: IcdCode
    phrases: PhraseList


class _Band(RuleModel):
    min: NonNegativeFloat
    max: NonNegativeFloat
    code: IcdCode

    @model_validator(mode="after")
    def _ordered(self) -> _Band:
        if self.max < self.min:
            raise ValueError("max below min")
        return self


class _Bmi(RuleModel):
    patterns: RegexList
    adult_age: NonNegativeInt
    bands: Annotated[tuple[_Band, ...], Field(min_length=1)]


class _NotReported(RuleModel):
    codes: IcdCodes
    why: Text


class _Query(RuleModel):
    kind: Literal["term", "lab"]
    phrases: PhraseList
    code_prefix: Text
    question: Text
    treatment: OptionalPhrases = ()
    why: Text

    @model_validator(mode="after")
    def _lab_treatment(self) -> _Query:
        if self.kind == "lab" and not self.treatment:
            raise ValueError("a 'lab' query needs 'treatment' phrases")
        return self


class _Seventh(RuleModel):
    sequela: PhraseList
    subsequent: PhraseList
    initial: PhraseList
    open: PhraseList
    open_severe: PhraseList
    closed: PhraseList
    delayed: PhraseList
    nonunion: PhraseList
    malunion: PhraseList


class _ExternalCauses(RuleModel):
    connectors: PhraseList
    default_levels: PhraseList
    why: Text


class DiagnosesFile(RuleFile):
    """``encounter_diagnoses.json`` (schema ``codesuggest.encounter-diagnoses/1``)."""

    schema_id: Literal["codesuggest.encounter-diagnoses/1"] = schema_field()
    personal_history: tuple[_Mapping, ...]
    family_history: tuple[_Mapping, ...]
    current_when_treated: _CurrentWhenTreated
    integral_symptoms: tuple[_Integral, ...]
    combinations: tuple[_Combination, ...]
    redirects: tuple[_Redirect, ...]
    default_titles: PhraseList
    companions: tuple[_Companion, ...]
    companion_negation: PhraseList
    companion_only: IcdCodes
    bmi: _Bmi
    not_reported: _NotReported
    queries: tuple[_Query, ...]
    conflict_question: Text
    seventh: _Seventh
    external_causes: _ExternalCauses


def load_diagnosis_rules(path: Path | None = None) -> DiagnosisRules:
    """Load and check ``encounter_diagnoses.json`` (or ``path``).

    Args:
        path: another file to read instead of the packaged one.

    Returns:
        The rules.

    Raises:
        RuleFileError: the file is invalid; the message names file, line and entry.
    """
    text, source = read_rule_text(DIAGNOSES_FILE, path)
    f = load_rules(DiagnosesFile, text, source)

    def mappings(items: tuple[_Mapping, ...]) -> tuple[Mapping, ...]:
        return tuple(Mapping(m.conditions, m.code, m.why) for m in items)

    cw, bmi, ext = f.current_when_treated, f.bmi, f.external_causes
    return DiagnosisRules(
        personal_history=mappings(f.personal_history),
        family_history=mappings(f.family_history),
        chronic=cw.conditions,
        chronic_cues=Phrases(cw.cues),
        chronic_why=cw.why,
        integral=tuple(Integral(i.symptoms, i.diagnoses, i.why) for i in f.integral_symptoms),
        combinations=tuple(Combination(c.all_of, c.none_of, c.code, c.remove, c.why) for c in f.combinations),
        redirects=tuple(Redirect(r.code, r.with_, r.to, r.history, r.why) for r in f.redirects),
        default_titles=f.default_titles,
        companions=tuple((c.code, Phrases(c.phrases)) for c in f.companions),
        companion_negation=Phrases(f.companion_negation),
        companion_only=f.companion_only,
        bmi_patterns=bmi.patterns,
        bmi_adult_age=bmi.adult_age,
        bmi_bands=tuple((float(b.min), float(b.max), b.code) for b in bmi.bands),
        not_reported=f.not_reported.codes,
        not_reported_why=f.not_reported.why,
        queries=tuple(
            QueryRule(q.kind, Phrases(q.phrases), q.code_prefix, q.question, Phrases(q.treatment), q.why)
            for q in f.queries
        ),
        conflict_question=f.conflict_question,
        seventh={k: Phrases(v) for k, v in f.seventh.model_dump().items()},
        external_connectors=frozenset(ext.connectors),
        external_default_levels=ext.default_levels,
        external_why=ext.why,
        source=source,
    )
