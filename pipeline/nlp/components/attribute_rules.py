"""The cue groups of ``cs_attributes`` (``resources/attribute_rules.json``) and their strict loader."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from pipeline.nlp.components.rules import MentionKind
from pipeline.nlp.components.section_rules import SectionCategory
from pipeline.rulefile import (
    NonBlank,
    NonNegativeInt,
    PositiveInt,
    RuleFile,
    RuleModel,
    entry_error,
    load_rules,
    schema_field,
)

ATTRIBUTE_RULES_FILE = "attribute_rules.json"

# Span attributes that rules may set or test (medspaCy ConText's names).
AssertionAttribute = Literal["is_negated", "is_historical", "is_family", "is_hypothetical", "is_uncertain"]


@dataclass(frozen=True)
class CueGroup:
    """Phrases that give one attribute of a mention a value (laterality, episode, acuity...).

    Attributes:
        name: the group's name; for target ``cs_attributes`` also the dict key.
        target: the span attribute written (``cs_laterality``, ``cs_episode``, ``cs_acuity``, ``cs_site``
            or ``cs_attributes``).
        scope: ``window`` (tokens around the mention, same sentence) or ``sentence``.
        window: tokens allowed between a cue and the mention, (before, after).
        pick: ``nearest`` cue wins, highest ``priority`` wins, or ``all`` values (a list).
        priority: value order for ``pick: priority`` and for the document-level value.
        values: value -> phrases, matched case-insensitively.
        case_sensitive: value -> phrases matched exactly ("R", "L").
        case_sensitive_window: the tighter window of the exact phrases.
        ignore: phrases that hide a cue inside them ("left the office", "follow up in").
        kinds: mention kinds the group applies to (None: every kind).
        mention_words: the mention must contain one of these words (lower case), if given.
        document_values: values that, found at note level, apply to mentions without a cue of
            their own; the note-level value is also stored in ``doc._.cs_encounter``.
        document_sentences: with ``document_sections``, where note-level cues count: the first
            N sentences, or the listed sections ("Follow-up visit." at the top, a reason for
            visit). When neither is given, the whole note counts.
        document_sections: see ``document_sentences``.
    """

    name: str
    target: str
    scope: str
    window: tuple[int, int]
    pick: str
    priority: tuple[str, ...]
    values: dict[str, tuple[str, ...]]
    case_sensitive: dict[str, tuple[str, ...]]
    case_sensitive_window: tuple[int, int]
    ignore: tuple[str, ...]
    kinds: frozenset[str] | None
    mention_words: frozenset[str] | None
    document_values: tuple[str, ...]
    document_sentences: int = 0
    document_sections: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ViewRules:
    """How the number of imaging views is read near a procedure mention.

    Attributes:
        kinds: mention kinds that can carry views.
        imaging_words: one of these must be in the mention or its sentence.
        view_words: nouns after a number ("3 views", "two projections").
        view_names: names of single views ("AP", "lateral", "oblique"); a list of two or more
            joined by connectors counts them ("AP, lateral and oblique" = 3).
        connectors: what may join view names.
        numbers: number words ("three", "single").
        complete_words: words for a complete series (``cs_attributes["views_complete"]``).
        max_views: larger numbers are not view counts.
    """

    kinds: frozenset[str]
    imaging_words: tuple[str, ...]
    view_words: tuple[str, ...]
    view_names: tuple[str, ...]
    connectors: tuple[str, ...]
    numbers: dict[str, int]
    complete_words: tuple[str, ...]
    max_views: int


@dataclass(frozen=True)
class EncounterRules:
    """Note-level cues for evaluation and management coding and imaging components.

    Attributes:
        new_patient: phrases saying the patient is new.
        established_patient: phrases saying the patient is established.
        settings: setting name -> phrases (office, emergency_department...).
        interpretation_only: phrases saying the images were taken elsewhere and only read here.
        minutes_patterns: regular expressions with one group capturing total minutes.
    """

    new_patient: tuple[str, ...]
    established_patient: tuple[str, ...]
    settings: dict[str, tuple[str, ...]]
    interpretation_only: tuple[str, ...]
    minutes_patterns: tuple[str, ...]


@dataclass(frozen=True)
class SectionAssertion:
    """A section that sets an assertion on every mention in it.

    Attributes:
        section: the section category.
        attribute: the assertion set to True (``is_negated``, ``is_uncertain``...).
        unless: assertions that, already True, prevent it.
    """

    section: str
    attribute: str
    unless: tuple[str, ...]


@dataclass(frozen=True)
class AttributeRules:
    """A validated attribute rule file.

    Attributes:
        groups: the cue groups.
        barriers: tokens a window never crosses (";", "but"...).
        views: the imaging-views rules.
        encounter: the note-level cues.
        section_assertions: assertions implied by sections.
        data: the validated JSON (written back by ``to_disk``).
        source: where the rules were read from.
    """

    groups: tuple[CueGroup, ...]
    barriers: frozenset[str]
    views: ViewRules
    encounter: EncounterRules
    section_assertions: tuple[SectionAssertion, ...]
    data: dict[str, Any] = field(repr=False)
    source: str = ""


Words = tuple[NonBlank, ...]
Window = tuple[NonNegativeInt, NonNegativeInt]


class _CueGroup(RuleModel):
    name: Annotated[str, Field(pattern=r"^[a-z_]+$")]
    target: Literal["cs_laterality", "cs_episode", "cs_acuity", "cs_site", "cs_attributes"]
    scope: Literal["window", "sentence"]
    window: Window | None = None
    pick: Literal["nearest", "priority", "all"] = "nearest"
    priority: Words = ()
    values: Annotated[dict[str, Words], Field(min_length=1)]
    case_sensitive: dict[str, Words] = {}
    case_sensitive_window: Window | None = None
    ignore: Words = ()
    kinds: tuple[MentionKind, ...] | None = None
    mention_words: Words | None = None
    document_values: Words = ()
    document_sentences: NonNegativeInt = 0
    document_sections: tuple[SectionCategory, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> _CueGroup:
        values = self.values
        if self.scope == "window" and self.window is None:
            raise ValueError("scope 'window' needs a window")
        for value in self.case_sensitive:
            if value not in values:
                raise ValueError(f"case_sensitive names unknown value {value!r}")
        seen: dict[str, str] = {}
        for value, phrases in values.items():
            for phrase in phrases:
                low = phrase.lower()
                if low in seen:
                    raise ValueError(f"phrase {phrase!r} is listed for {seen[low]!r} and {value!r}")
                seen[low] = value
        for value in self.priority:
            if value not in values:
                raise ValueError(f"priority names unknown value {value!r}")
        if self.pick == "priority" and set(self.priority) != set(values):
            raise ValueError("pick 'priority' needs a priority listing every value")
        for value in self.document_values:
            if value not in values:
                raise ValueError(f"document_values names unknown value {value!r}")
        if self.document_values and self.pick == "all":
            raise ValueError("document_values cannot be used with pick 'all'")
        if (self.document_sentences or self.document_sections) and not self.document_values:
            raise ValueError("document_sentences / document_sections need document_values")
        if self.target == "cs_site" and self.pick != "all":
            raise ValueError("target cs_site holds a list: use pick 'all'")
        if self.target not in ("cs_site", "cs_attributes") and self.pick == "all":
            raise ValueError(f"target {self.target} holds one value: pick 'nearest' or 'priority'")
        return self

    def spec(self) -> CueGroup:
        window = self.window or (0, 0)
        return CueGroup(
            name=self.name,
            target=self.target,
            scope=self.scope,
            window=window,
            pick=self.pick,
            priority=self.priority,
            values=dict(self.values),
            case_sensitive=dict(self.case_sensitive),
            case_sensitive_window=self.case_sensitive_window or window,
            ignore=self.ignore,
            kinds=frozenset(self.kinds) if self.kinds is not None else None,
            mention_words=frozenset(w.lower() for w in self.mention_words) if self.mention_words is not None else None,
            document_values=self.document_values,
            document_sentences=self.document_sentences,
            document_sections=frozenset(self.document_sections),
        )


class _Views(RuleModel):
    kinds: tuple[MentionKind, ...]
    imaging_words: Words
    view_words: Words
    view_names: Words
    connectors: Words
    numbers: dict[Annotated[str, Field(min_length=1)], PositiveInt]
    complete_words: Words
    max_views: PositiveInt


def _minutes_pattern(value: str) -> str:
    try:
        groups = re.compile(value).groups
    except re.error as exc:
        raise ValueError(f"bad regular expression {value!r}: {exc}") from None
    if groups != 1:
        raise ValueError(f"{value!r} must have exactly one group (the minutes)")
    return value


class _Encounter(RuleModel):
    new_patient: Words
    established_patient: Words
    settings: dict[str, Words]
    interpretation_only: Words
    minutes_patterns: tuple[Annotated[NonBlank, AfterValidator(_minutes_pattern)], ...]


class _SectionAssertion(RuleModel):
    section: SectionCategory
    set: AssertionAttribute
    unless: tuple[AssertionAttribute, ...] = ()


class AttributeRulesFile(RuleFile):
    """``attribute_rules.json`` (schema ``codesuggest.attribute-rules/1``)."""

    schema_id: Literal["codesuggest.attribute-rules/1"] = schema_field()
    cue_groups: tuple[_CueGroup, ...]
    barriers: Words
    views: _Views
    encounter: _Encounter
    section_assertions: tuple[_SectionAssertion, ...]


def load_attribute_rules(text: str, source: str) -> AttributeRules:
    """Parse and validate an attribute rule file (schema ``codesuggest.attribute-rules/1``).

    Args:
        text: the file's JSON text.
        source: the file name used in error messages.

    Returns:
        The validated rules.

    Raises:
        RuleFileError: invalid JSON, wrong schema, unknown keys or bad values; the message names
            the file, line and entry.
    """
    f = load_rules(AttributeRulesFile, text, source)
    groups = tuple(g.spec() for g in f.cue_groups)
    names = [g.name for g in groups]
    targets = [g.target for g in groups]
    for i, group in enumerate(groups):
        if group.name in names[:i]:
            raise entry_error(text, source, ("cue_groups", i), f"duplicate cue group name {group.name!r}")
        if group.target not in ("cs_attributes", "cs_site") and targets.count(group.target) > 1:
            raise entry_error(text, source, ("cue_groups", i), f"two cue groups write {group.target}")
    views, enc = f.views, f.encounter
    return AttributeRules(
        groups=groups,
        barriers=frozenset(b.lower() for b in f.barriers),
        views=ViewRules(
            kinds=frozenset(views.kinds),
            imaging_words=views.imaging_words,
            view_words=views.view_words,
            view_names=views.view_names,
            connectors=views.connectors,
            numbers={w.lower(): n for w, n in views.numbers.items()},
            complete_words=views.complete_words,
            max_views=views.max_views,
        ),
        encounter=EncounterRules(
            new_patient=enc.new_patient,
            established_patient=enc.established_patient,
            settings=dict(enc.settings),
            interpretation_only=enc.interpretation_only,
            minutes_patterns=enc.minutes_patterns,
        ),
        section_assertions=tuple(SectionAssertion(a.section, a.set, a.unless) for a in f.section_assertions),
        data=json.loads(text),
        source=source,
    )
