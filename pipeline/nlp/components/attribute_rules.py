"""The cue groups of ``cs_attributes`` (``resources/attribute_rules.json``) and their strict loader."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.nlp.components.rules import (
    MENTION_KINDS,
    RuleChecker,
    check_keys,
    mention_kinds,
    parse_rule_text,
    string_list,
)
from pipeline.nlp.components.section_rules import SECTION_CATEGORIES

ATTRIBUTE_RULES_SCHEMA = "codesuggest.attribute-rules/1"
ATTRIBUTE_RULES_FILE = "attribute_rules.json"

# Span attributes that rules may set or test (medspaCy ConText's names).
ASSERTION_ATTRIBUTES = (
    "is_negated",
    "is_historical",
    "is_family",
    "is_hypothetical",
    "is_uncertain",
)
# Where a cue group writes its value on a mention.
CUE_TARGETS = ("cs_laterality", "cs_episode", "cs_acuity", "cs_site", "cs_attributes")
CUE_SCOPES = ("window", "sentence")
CUE_PICKS = ("nearest", "priority", "all")


@dataclass(frozen=True)
class CueGroup:
    """Phrases that give one attribute of a mention a value (laterality, episode, acuity...).

    Attributes:
        name: the group's name; for target ``cs_attributes`` also the dict key.
        target: the span attribute written (one of :data:`CUE_TARGETS`).
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
        attribute: the assertion set to True (one of :data:`ASSERTION_ATTRIBUTES`).
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


_GROUP_KEYS = {
    "name",
    "target",
    "scope",
    "window",
    "pick",
    "priority",
    "values",
    "case_sensitive",
    "case_sensitive_window",
    "ignore",
    "kinds",
    "mention_words",
    "document_values",
    "document_sentences",
    "document_sections",
}


def _window(value: Any, check: RuleChecker, key: str, index: int) -> tuple[int, int]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        raise check.error("window must be [tokens_before, tokens_after], two integers >= 0", key, index)
    return value[0], value[1]


def _phrase_map(
    value: Any, what: str, check: RuleChecker, key: str, index: int | None = None
) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise check.error(f"{what} must be an object: value -> list of phrases", key, index)
    return {name: string_list(phrases, f"{what}[{name!r}]", check, key, index) for name, phrases in value.items()}


def _load_group(rule: Any, check: RuleChecker, index: int) -> CueGroup:
    key = "cue_groups"
    check_keys(rule, _GROUP_KEYS, check, key, index)
    for required in ("name", "target", "scope", "values"):
        if required not in rule:
            raise check.error(f"missing key {required!r}", key, index)
    name = rule["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[a-z_]+", name):
        raise check.error(f"name must be lower-case letters and underscores, not {name!r}", key, index)
    target = rule["target"]
    if target not in CUE_TARGETS:
        raise check.error(f"unknown target {target!r} (allowed: {', '.join(CUE_TARGETS)})", key, index)
    scope = rule["scope"]
    if scope not in CUE_SCOPES:
        raise check.error(f"unknown scope {scope!r} (allowed: {', '.join(CUE_SCOPES)})", key, index)
    window = _window(rule["window"], check, key, index) if "window" in rule else (0, 0)
    if scope == "window" and "window" not in rule:
        raise check.error("scope 'window' needs a window", key, index)
    pick = rule.get("pick", "nearest")
    if pick not in CUE_PICKS:
        raise check.error(f"unknown pick {pick!r} (allowed: {', '.join(CUE_PICKS)})", key, index)
    values = _phrase_map(rule["values"], "values", check, key, index)
    if not values:
        raise check.error("values must name at least one value", key, index)
    case_sensitive = _phrase_map(rule.get("case_sensitive", {}), "case_sensitive", check, key, index)
    for value in case_sensitive:
        if value not in values:
            raise check.error(f"case_sensitive names unknown value {value!r}", key, index)
    cs_window = _window(rule["case_sensitive_window"], check, key, index) if "case_sensitive_window" in rule else window
    seen: dict[str, str] = {}
    for value, phrases in values.items():
        for phrase in phrases:
            low = phrase.lower()
            if low in seen:
                raise check.error(f"phrase {phrase!r} is listed for {seen[low]!r} and {value!r}", key, index)
            seen[low] = value
    priority = string_list(rule.get("priority", []), "priority", check, key, index)
    for value in priority:
        if value not in values:
            raise check.error(f"priority names unknown value {value!r}", key, index)
    if pick == "priority" and set(priority) != set(values):
        raise check.error("pick 'priority' needs a priority listing every value", key, index)
    document_values = string_list(rule.get("document_values", []), "document_values", check, key, index)
    for value in document_values:
        if value not in values:
            raise check.error(f"document_values names unknown value {value!r}", key, index)
    if document_values and pick == "all":
        raise check.error("document_values cannot be used with pick 'all'", key, index)
    document_sentences = rule.get("document_sentences", 0)
    if not isinstance(document_sentences, int) or isinstance(document_sentences, bool) or document_sentences < 0:
        raise check.error("document_sentences must be an integer >= 0", key, index)
    document_sections = frozenset(
        string_list(rule.get("document_sections", []), "document_sections", check, key, index)
    )
    for section in sorted(document_sections):
        if section not in SECTION_CATEGORIES:
            raise check.error(f"document_sections: unknown section category {section!r}", key, index)
    if (document_sentences or document_sections) and not document_values:
        raise check.error("document_sentences / document_sections need document_values", key, index)
    kinds = frozenset(mention_kinds(rule["kinds"], "kinds", check, key, index)) if "kinds" in rule else None
    words = (
        frozenset(w.lower() for w in string_list(rule["mention_words"], "mention_words", check, key, index))
        if "mention_words" in rule
        else None
    )
    if target == "cs_site" and pick != "all":
        raise check.error("target cs_site holds a list: use pick 'all'", key, index)
    if target != "cs_site" and pick == "all" and target != "cs_attributes":
        raise check.error(f"target {target} holds one value: pick 'nearest' or 'priority'", key, index)
    return CueGroup(
        name=name,
        target=target,
        scope=scope,
        window=window,
        pick=pick,
        priority=priority,
        values=values,
        case_sensitive=case_sensitive,
        case_sensitive_window=cs_window,
        ignore=string_list(rule.get("ignore", []), "ignore", check, key, index),
        kinds=kinds,
        mention_words=words,
        document_values=document_values,
        document_sentences=document_sentences,
        document_sections=document_sections,
    )


def _load_views(raw: Any, check: RuleChecker) -> ViewRules:
    key = "views"
    allowed = {
        "kinds",
        "imaging_words",
        "view_words",
        "view_names",
        "connectors",
        "numbers",
        "complete_words",
        "max_views",
    }
    check.exact_object(raw, allowed, key)
    numbers = raw["numbers"]
    if not isinstance(numbers, dict) or not all(
        isinstance(w, str) and w and isinstance(n, int) and not isinstance(n, bool) and n > 0
        for w, n in numbers.items()
    ):
        raise check.error("numbers must map words to positive integers", key)
    max_views = raw["max_views"]
    if not isinstance(max_views, int) or isinstance(max_views, bool) or max_views <= 0:
        raise check.error("max_views must be a positive integer", key)
    kinds = frozenset(k.lower() for k in string_list(raw["kinds"], "kinds", check, key))
    for kind in kinds:
        if kind not in MENTION_KINDS:
            raise check.error(f"kinds: unknown mention kind {kind!r}", key)
    return ViewRules(
        kinds=kinds,
        imaging_words=string_list(raw["imaging_words"], "imaging_words", check, key),
        view_words=string_list(raw["view_words"], "view_words", check, key),
        view_names=string_list(raw["view_names"], "view_names", check, key),
        connectors=string_list(raw["connectors"], "connectors", check, key),
        numbers={w.lower(): n for w, n in numbers.items()},
        complete_words=string_list(raw["complete_words"], "complete_words", check, key),
        max_views=max_views,
    )


def _load_encounter(raw: Any, check: RuleChecker) -> EncounterRules:
    key = "encounter"
    allowed = {
        "new_patient",
        "established_patient",
        "settings",
        "interpretation_only",
        "minutes_patterns",
    }
    check.exact_object(raw, allowed, key)
    patterns = string_list(raw["minutes_patterns"], "minutes_patterns", check, key)
    for pattern in patterns:
        try:
            groups = re.compile(pattern).groups
        except re.error as exc:
            raise check.error(f"minutes_patterns: bad regular expression {pattern!r}: {exc}", key) from None
        if groups != 1:
            raise check.error(f"minutes_patterns: {pattern!r} must have exactly one group (the minutes)", key)
    return EncounterRules(
        new_patient=string_list(raw["new_patient"], "new_patient", check, key),
        established_patient=string_list(raw["established_patient"], "established_patient", check, key),
        settings=_phrase_map(raw["settings"], "settings", check, key),
        interpretation_only=string_list(raw["interpretation_only"], "interpretation_only", check, key),
        minutes_patterns=patterns,
    )


def load_attribute_rules(text: str, source: str) -> AttributeRules:
    """Parse and validate an attribute rule file (schema ``codesuggest.attribute-rules/1``).

    Args:
        text: the file's JSON text.
        source: the file name used in error messages.

    Returns:
        The validated rules.

    Raises:
        RuleFileError: invalid JSON, wrong schema, unknown keys or bad values; the message names
            the file, line and (for cue groups and section assertions) the entry's index.
    """
    keys = {"cue_groups", "barriers", "views", "encounter", "section_assertions"}
    data, check = parse_rule_text(text, source, ATTRIBUTE_RULES_SCHEMA, keys, keys)
    raw_groups = data["cue_groups"]
    if not isinstance(raw_groups, list):
        raise check.error("cue_groups must be a list", "cue_groups")
    groups = tuple(_load_group(rule, check, i) for i, rule in enumerate(raw_groups))
    names = [g.name for g in groups]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise check.error(f"duplicate cue group name {name!r}", "cue_groups", i)
    for i, group in enumerate(groups):
        if group.target not in ("cs_attributes", "cs_site") and [g.target for g in groups].count(group.target) > 1:
            raise check.error(f"two cue groups write {group.target}", "cue_groups", i)
    barriers = frozenset(b.lower() for b in string_list(data["barriers"], "barriers", check, "barriers"))
    assertions: list[SectionAssertion] = []
    raw_assertions = data["section_assertions"]
    if not isinstance(raw_assertions, list):
        raise check.error("section_assertions must be a list", "section_assertions")
    for i, rule in enumerate(raw_assertions):
        check_keys(rule, {"section", "set", "unless"}, check, "section_assertions", i)
        if rule.get("section") not in SECTION_CATEGORIES:
            raise check.error(f"unknown section category {rule.get('section')!r}", "section_assertions", i)
        if rule.get("set") not in ASSERTION_ATTRIBUTES:
            raise check.error(
                f"set must be one of {', '.join(ASSERTION_ATTRIBUTES)}, not {rule.get('set')!r}",
                "section_assertions",
                i,
            )
        unless = string_list(rule.get("unless", []), "unless", check, "section_assertions", i)
        for attr in unless:
            if attr not in ASSERTION_ATTRIBUTES:
                raise check.error(f"unless: unknown assertion {attr!r}", "section_assertions", i)
        assertions.append(SectionAssertion(rule["section"], rule["set"], unless))
    return AttributeRules(
        groups=groups,
        barriers=barriers,
        views=_load_views(data["views"], check),
        encounter=_load_encounter(data["encounter"], check),
        section_assertions=tuple(assertions),
        data=data,
        source=source,
    )
