"""Strict loaders of the clinical-context rule files (sections, ConText, attributes).

Each rule file is JSON with a top-level ``schema`` key naming its format. The loaders check every
key and value and fail with a :class:`~pipeline.errors.RuleFileError` that names the file, the
line and the rule (``section_rules[12]``), so a typo in a rule never silently disables it. A
loaded rule set keeps the validated JSON (``data``) so that components can write it into their
folder on ``to_disk`` and read it back with the same loader on ``from_disk``.

The packaged files live in ``pipeline/resources`` and are read through ``importlib.resources``;
components receive another path only from their ``initialize`` settings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from spacy.schemas import validate_token_pattern

from pipeline.errors import RuleFileError

SECTION_RULES_SCHEMA = "codesuggest.section-rules/1"
CONTEXT_RULES_SCHEMA = "codesuggest.context-rules/1"
ATTRIBUTE_RULES_SCHEMA = "codesuggest.attribute-rules/1"

SECTION_RULES_FILE = "section_rules.json"
CONTEXT_RULES_FILE = "context_rules.json"
ATTRIBUTE_RULES_FILE = "attribute_rules.json"

SECTION_CATEGORIES = (
    "chief_complaint",
    "hpi",
    "past_medical_history",
    "past_surgical_history",
    "family_history",
    "social_history",
    "medications",
    "allergies",
    "review_of_systems",
    "physical_exam",
    "results",
    "imaging",
    "assessment",
    "plan",
    "assessment_plan",
    "impression",
    "diagnoses",
    "discharge_diagnoses",
    "procedures",
    "hospital_course",
    "discharge_instructions",
    "reason_for_visit",
)
CONTEXT_CATEGORIES = (
    "NEGATED_EXISTENCE",
    "HISTORICAL",
    "FAMILY",
    "HYPOTHETICAL",
    "POSSIBLE_EXISTENCE",
)
CONTEXT_DIRECTIONS = ("FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE", "PSEUDO")
MENTION_KINDS = ("diagnosis", "symptom", "procedure", "supply", "external", "drug", "finding")
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


# -- locating errors ---------------------------------------------------------------------------
def _locate(text: str) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Line of every top-level key, and of every element of every top-level array."""
    key_lines: dict[str, int] = {}
    element_lines: dict[str, list[int]] = {}
    stack: list[str] = []
    line, i, n = 1, 0, len(text)
    key = ""
    expecting = False
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if c in " \t\r":
            i += 1
            continue
        in_top_array = len(stack) == 2 and stack[0] == "{" and stack[1] == "["
        if in_top_array and expecting and c not in ",]":
            element_lines.setdefault(key, []).append(line)
            expecting = False
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if len(stack) == 1:
                k = j + 1
                while k < n and text[k] in " \t\r\n":
                    k += 1
                if k < n and text[k] == ":":
                    key = text[i + 1 : j]
                    key_lines.setdefault(key, line)
            line += text.count("\n", i, j)
            i = j + 1
            continue
        if c in "{[":
            stack.append(c)
            if len(stack) == 2 and c == "[":
                expecting = True
                element_lines[key] = []
        elif c in "}]":
            if stack:
                stack.pop()
        elif c == "," and in_top_array:
            expecting = True
        i += 1
    return key_lines, element_lines


class _Checker:
    """Builds error messages that name the file, the line and the rule."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self._located: tuple[dict[str, int], dict[str, list[int]]] | None = None

    def error(self, message: str, key: str | None = None, index: int | None = None) -> RuleFileError:
        if self._located is None:
            self._located = _locate(self.text)
        key_lines, element_lines = self._located
        line = None
        where = ""
        if key is not None:
            where = key if index is None else f"{key}[{index}]"
            lines = element_lines.get(key, [])
            has_line = index is not None and index < len(lines)
            line = lines[index] if has_line and index is not None else key_lines.get(key)
        prefix = f"{self.source}: line {line}: " if line is not None else f"{self.source}: "
        return RuleFileError(f"{prefix}{where + ': ' if where else ''}{message}")

    def exact_object(self, raw: Any, allowed: set[str], key: str) -> None:
        """Require ``raw`` to be an object with exactly the ``allowed`` keys."""
        if not isinstance(raw, dict):
            raise self.error(f"{key} must be an object", key)
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise self.error(f"unknown key(s) {unknown} (allowed: {sorted(allowed)})", key)
        missing = sorted(allowed - set(raw))
        if missing:
            raise self.error(f"missing key(s) {missing}", key)


def _parse(text: str, source: str, schema: str, keys: set[str], required: set[str]) -> tuple[dict[str, Any], _Checker]:
    check = _Checker(text, source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RuleFileError(f"{source}: line {exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise RuleFileError(f"{source}: line 1: the top level must be a JSON object")
    if data.get("schema") != schema:
        raise check.error(f"expected schema {schema!r}, found {data.get('schema')!r}", "schema")
    allowed = keys | {"schema", "description"}
    for name in data:
        if name not in allowed:
            raise check.error(f"unknown key {name!r} (allowed: {sorted(allowed)})", name)
    for name in sorted(required):
        if name not in data:
            raise check.error(f"missing key {name!r}")
    if "description" in data and not isinstance(data["description"], str):
        raise check.error("description must be a string", "description")
    return data, check


def _string_list(value: Any, what: str, check: _Checker, key: str, index: int | None = None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise check.error(f"{what} must be a list of non-empty strings", key, index)
    return tuple(value)


def _check_pattern(pattern: Any, check: _Checker, key: str, index: int) -> list[dict[str, Any]]:
    if not isinstance(pattern, list) or not pattern or not all(isinstance(p, dict) for p in pattern):
        raise check.error("pattern must be a non-empty list of token patterns (objects)", key, index)
    problems = validate_token_pattern(pattern)
    if problems:
        raise check.error(f"bad token pattern: {problems[0]}", key, index)
    return pattern


def _check_keys(rule: Any, allowed: set[str], check: _Checker, key: str, index: int) -> dict[str, Any]:
    if not isinstance(rule, dict):
        raise check.error("must be a JSON object", key, index)
    unknown = sorted(set(rule) - allowed)
    if unknown:
        raise check.error(f"unknown key(s) {unknown} (allowed: {sorted(allowed)})", key, index)
    return rule


# -- section rules -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SectionRuleSpec:
    """One heading rule.

    Attributes:
        category: section category (one of :data:`SECTION_CATEGORIES`).
        literal: the heading as written (matched case-insensitively, token by token).
        pattern: a spaCy token pattern used instead of ``literal`` when given.
        parents: categories this section may be a subsection of.
    """

    category: str
    literal: str
    pattern: list[dict[str, Any]] | None = None
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class SectionRules:
    """A validated section rule file.

    Attributes:
        rules: the heading rules in file order.
        data: the validated JSON (written back by ``to_disk``).
        source: where the rules were read from.
    """

    rules: tuple[SectionRuleSpec, ...]
    data: dict[str, Any] = field(repr=False)
    source: str = ""


def load_section_rules(text: str, source: str) -> SectionRules:
    """Parse and validate a section rule file (schema ``codesuggest.section-rules/1``).

    Args:
        text: the file's JSON text.
        source: the file name used in error messages.

    Returns:
        The validated rules.

    Raises:
        RuleFileError: invalid JSON, wrong schema, unknown keys, an unknown category, a bad token
            pattern or a duplicate heading; the message names the file, line and rule index.
    """
    data, check = _parse(text, source, SECTION_RULES_SCHEMA, {"section_rules"}, {"section_rules"})
    raw = data["section_rules"]
    if not isinstance(raw, list) or not raw:
        raise check.error("section_rules must be a non-empty list", "section_rules")
    specs: list[SectionRuleSpec] = []
    seen: dict[str, str] = {}
    for i, rule in enumerate(raw):
        _check_keys(rule, {"category", "literal", "pattern", "parents"}, check, "section_rules", i)
        category = rule.get("category")
        if category not in SECTION_CATEGORIES:
            raise check.error(
                f"unknown category {category!r} (allowed: {', '.join(SECTION_CATEGORIES)})",
                "section_rules",
                i,
            )
        literal = rule.get("literal")
        pattern = rule.get("pattern")
        if literal is None and pattern is None:
            raise check.error("needs a literal or a pattern", "section_rules", i)
        if literal is not None and (not isinstance(literal, str) or not literal.strip()):
            raise check.error("literal must be a non-empty string", "section_rules", i)
        if pattern is not None:
            _check_pattern(pattern, check, "section_rules", i)
        name = (literal or json.dumps(pattern, sort_keys=True)).strip().lower()
        if name in seen:
            raise check.error(f"duplicate heading {name!r} (also {seen[name]})", "section_rules", i)
        seen[name] = category
        parents = _string_list(rule.get("parents", []), "parents", check, "section_rules", i)
        for parent in parents:
            if parent not in SECTION_CATEGORIES:
                raise check.error(f"unknown parent category {parent!r}", "section_rules", i)
        specs.append(SectionRuleSpec(category, literal or category, pattern, parents))
    return SectionRules(tuple(specs), data, source)


# -- ConText rules -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ContextRuleSpec:
    """One ConText trigger (the keys of medspaCy's ``ConTextRule``).

    Attributes:
        literal: the trigger phrase (matched case-insensitively when ``pattern`` is None).
        category: one of :data:`CONTEXT_CATEGORIES`.
        direction: one of :data:`CONTEXT_DIRECTIONS`.
        pattern: a spaCy token pattern used instead of ``literal``.
        max_scope: at most this many tokens of scope on each side.
        max_targets: modify at most this many (nearest) mentions.
        allowed_types: mention kinds it may modify (None: all).
        excluded_types: mention kinds it never modifies.
        terminated_by: categories whose triggers end this trigger's scope.
    """

    literal: str
    category: str
    direction: str
    pattern: list[dict[str, Any]] | None = None
    max_scope: int | None = None
    max_targets: int | None = None
    allowed_types: tuple[str, ...] | None = None
    excluded_types: tuple[str, ...] | None = None
    terminated_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContextRules:
    """A validated ConText rule file.

    Attributes:
        rules: the triggers in file order.
        data: the validated JSON (written back by ``to_disk``).
        source: where the rules were read from.
    """

    rules: tuple[ContextRuleSpec, ...]
    data: dict[str, Any] = field(repr=False)
    source: str = ""


_CONTEXT_KEYS = {
    "literal",
    "category",
    "direction",
    "pattern",
    "max_scope",
    "max_targets",
    "allowed_types",
    "excluded_types",
    "terminated_by",
}


def _positive_int(value: Any, what: str, check: _Checker, key: str, index: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise check.error(f"{what} must be a positive integer, not {value!r}", key, index)
    return value


def _kinds(value: Any, what: str, check: _Checker, key: str, index: int) -> tuple[str, ...]:
    kinds = _string_list(value, what, check, key, index)
    for kind in kinds:
        if kind.lower() not in MENTION_KINDS:
            raise check.error(
                f"{what}: unknown mention kind {kind!r} (allowed: {', '.join(MENTION_KINDS)})",
                key,
                index,
            )
    return tuple(k.lower() for k in kinds)


def load_context_rules(text: str, source: str) -> ContextRules:
    """Parse and validate a ConText rule file (schema ``codesuggest.context-rules/1``).

    Args:
        text: the file's JSON text.
        source: the file name used in error messages.

    Returns:
        The validated rules.

    Raises:
        RuleFileError: invalid JSON, wrong schema, unknown keys, a bad category or direction, a
            bad token pattern, a duplicate literal; the message names the file, line and rule index.
    """
    data, check = _parse(text, source, CONTEXT_RULES_SCHEMA, {"context_rules"}, {"context_rules"})
    raw = data["context_rules"]
    if not isinstance(raw, list) or not raw:
        raise check.error("context_rules must be a non-empty list", "context_rules")
    specs: list[ContextRuleSpec] = []
    seen: set[str] = set()
    key = "context_rules"
    for i, rule in enumerate(raw):
        _check_keys(rule, _CONTEXT_KEYS, check, key, i)
        for required in ("literal", "category", "direction"):
            if required not in rule:
                raise check.error(f"missing key {required!r}", key, i)
        literal = rule["literal"]
        if not isinstance(literal, str) or not literal.strip():
            raise check.error("literal must be a non-empty string", key, i)
        if literal.lower() in seen:
            raise check.error(f"duplicate literal {literal!r}", key, i)
        seen.add(literal.lower())
        category = rule["category"]
        if category not in CONTEXT_CATEGORIES:
            raise check.error(f"unknown category {category!r} (allowed: {', '.join(CONTEXT_CATEGORIES)})", key, i)
        direction = rule["direction"]
        if direction not in CONTEXT_DIRECTIONS:
            raise check.error(
                f"unknown direction {direction!r} (allowed: {', '.join(CONTEXT_DIRECTIONS)})",
                key,
                i,
            )
        pattern = _check_pattern(rule["pattern"], check, key, i) if rule.get("pattern") is not None else None
        max_scope = _positive_int(rule["max_scope"], "max_scope", check, key, i) if "max_scope" in rule else None
        max_targets = (
            _positive_int(rule["max_targets"], "max_targets", check, key, i) if "max_targets" in rule else None
        )
        allowed = _kinds(rule["allowed_types"], "allowed_types", check, key, i) if "allowed_types" in rule else None
        excluded = _kinds(rule["excluded_types"], "excluded_types", check, key, i) if "excluded_types" in rule else None
        if allowed is not None and excluded is not None:
            raise check.error("give allowed_types or excluded_types, not both", key, i)
        terminated_by = _string_list(rule.get("terminated_by", []), "terminated_by", check, key, i)
        for other in terminated_by:
            if other not in CONTEXT_CATEGORIES:
                raise check.error(f"terminated_by: unknown category {other!r}", key, i)
        specs.append(
            ContextRuleSpec(
                literal,
                category,
                direction,
                pattern,
                max_scope,
                max_targets,
                allowed,
                excluded,
                terminated_by,
            )
        )
    return ContextRules(tuple(specs), data, source)


# -- attribute rules ---------------------------------------------------------------------------
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


def _window(value: Any, check: _Checker, key: str, index: int) -> tuple[int, int]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        raise check.error("window must be [tokens_before, tokens_after], two integers >= 0", key, index)
    return value[0], value[1]


def _phrase_map(
    value: Any, what: str, check: _Checker, key: str, index: int | None = None
) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise check.error(f"{what} must be an object: value -> list of phrases", key, index)
    return {name: _string_list(phrases, f"{what}[{name!r}]", check, key, index) for name, phrases in value.items()}


def _load_group(rule: Any, check: _Checker, index: int) -> CueGroup:
    key = "cue_groups"
    _check_keys(rule, _GROUP_KEYS, check, key, index)
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
    priority = _string_list(rule.get("priority", []), "priority", check, key, index)
    for value in priority:
        if value not in values:
            raise check.error(f"priority names unknown value {value!r}", key, index)
    if pick == "priority" and set(priority) != set(values):
        raise check.error("pick 'priority' needs a priority listing every value", key, index)
    document_values = _string_list(rule.get("document_values", []), "document_values", check, key, index)
    for value in document_values:
        if value not in values:
            raise check.error(f"document_values names unknown value {value!r}", key, index)
    if document_values and pick == "all":
        raise check.error("document_values cannot be used with pick 'all'", key, index)
    document_sentences = rule.get("document_sentences", 0)
    if not isinstance(document_sentences, int) or isinstance(document_sentences, bool) or document_sentences < 0:
        raise check.error("document_sentences must be an integer >= 0", key, index)
    document_sections = frozenset(
        _string_list(rule.get("document_sections", []), "document_sections", check, key, index)
    )
    for section in sorted(document_sections):
        if section not in SECTION_CATEGORIES:
            raise check.error(f"document_sections: unknown section category {section!r}", key, index)
    if (document_sentences or document_sections) and not document_values:
        raise check.error("document_sentences / document_sections need document_values", key, index)
    kinds = frozenset(_kinds(rule["kinds"], "kinds", check, key, index)) if "kinds" in rule else None
    words = (
        frozenset(w.lower() for w in _string_list(rule["mention_words"], "mention_words", check, key, index))
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
        ignore=_string_list(rule.get("ignore", []), "ignore", check, key, index),
        kinds=kinds,
        mention_words=words,
        document_values=document_values,
        document_sentences=document_sentences,
        document_sections=document_sections,
    )


def _load_views(raw: Any, check: _Checker) -> ViewRules:
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
    kinds = frozenset(k.lower() for k in _string_list(raw["kinds"], "kinds", check, key))
    for kind in kinds:
        if kind not in MENTION_KINDS:
            raise check.error(f"kinds: unknown mention kind {kind!r}", key)
    return ViewRules(
        kinds=kinds,
        imaging_words=_string_list(raw["imaging_words"], "imaging_words", check, key),
        view_words=_string_list(raw["view_words"], "view_words", check, key),
        view_names=_string_list(raw["view_names"], "view_names", check, key),
        connectors=_string_list(raw["connectors"], "connectors", check, key),
        numbers={w.lower(): n for w, n in numbers.items()},
        complete_words=_string_list(raw["complete_words"], "complete_words", check, key),
        max_views=max_views,
    )


def _load_encounter(raw: Any, check: _Checker) -> EncounterRules:
    key = "encounter"
    allowed = {
        "new_patient",
        "established_patient",
        "settings",
        "interpretation_only",
        "minutes_patterns",
    }
    check.exact_object(raw, allowed, key)
    patterns = _string_list(raw["minutes_patterns"], "minutes_patterns", check, key)
    for pattern in patterns:
        try:
            groups = re.compile(pattern).groups
        except re.error as exc:
            raise check.error(f"minutes_patterns: bad regular expression {pattern!r}: {exc}", key) from None
        if groups != 1:
            raise check.error(f"minutes_patterns: {pattern!r} must have exactly one group (the minutes)", key)
    return EncounterRules(
        new_patient=_string_list(raw["new_patient"], "new_patient", check, key),
        established_patient=_string_list(raw["established_patient"], "established_patient", check, key),
        settings=_phrase_map(raw["settings"], "settings", check, key),
        interpretation_only=_string_list(raw["interpretation_only"], "interpretation_only", check, key),
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
    data, check = _parse(text, source, ATTRIBUTE_RULES_SCHEMA, keys, keys)
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
    barriers = frozenset(b.lower() for b in _string_list(data["barriers"], "barriers", check, "barriers"))
    assertions: list[SectionAssertion] = []
    raw_assertions = data["section_assertions"]
    if not isinstance(raw_assertions, list):
        raise check.error("section_assertions must be a list", "section_assertions")
    for i, rule in enumerate(raw_assertions):
        _check_keys(rule, {"section", "set", "unless"}, check, "section_assertions", i)
        if rule.get("section") not in SECTION_CATEGORIES:
            raise check.error(f"unknown section category {rule.get('section')!r}", "section_assertions", i)
        if rule.get("set") not in ASSERTION_ATTRIBUTES:
            raise check.error(
                f"set must be one of {', '.join(ASSERTION_ATTRIBUTES)}, not {rule.get('set')!r}",
                "section_assertions",
                i,
            )
        unless = _string_list(rule.get("unless", []), "unless", check, "section_assertions", i)
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


# -- patterns as phrases -----------------------------------------------------------------------
def expand_pattern(pattern: list[dict[str, Any]], limit: int = 512) -> list[tuple[str, ...]] | None:
    """Spell out a token pattern as the lower-case token sequences it matches, when it can be.

    spaCy's ``Matcher`` tries every token pattern at every token, which costs milliseconds a note
    with a hundred patterns; a ``PhraseMatcher`` looks phrases up by hash. A pattern whose tokens
    only test ``LOWER`` (a string or ``IN`` a list), or ``ORTH`` of a caseless string, each
    required or optional (``"OP": "?"``), is a finite set of phrases.

    Args:
        pattern: a validated spaCy token pattern.
        limit: give up (return None) above this many phrases.

    Returns:
        The phrases as token tuples (no empty one), or None when the pattern is not a finite
        phrase set (regular expressions, ``LIKE_NUM``, other operators...).
    """
    phrases: list[tuple[str, ...]] = [()]
    for token in pattern:
        op = token.get("OP")
        if op not in (None, "?") or not set(token) <= {"LOWER", "ORTH", "OP"} or len(token) - (op is not None) != 1:
            return None
        if "LOWER" in token:
            value = token["LOWER"]
            if isinstance(value, str):
                options = [value.lower()]
            elif isinstance(value, dict) and set(value) == {"IN"} and all(isinstance(v, str) for v in value["IN"]):
                options = sorted({v.lower() for v in value["IN"]})
            else:
                return None
        else:
            value = token["ORTH"]
            if not isinstance(value, str) or value != value.lower():
                return None
            options = [value]
        grown = [(*p, o) for p in phrases for o in options]
        phrases = grown + phrases if op == "?" else grown
        if len(phrases) > limit:
            return None
    return [p for p in dict.fromkeys(phrases) if p]


# -- reading -----------------------------------------------------------------------------------
def read_rule_text(path: str | Path | None, packaged: str) -> tuple[str, str]:
    """Return the text and the display name of a rule file.

    Args:
        path: a rule file given by the caller, or None for the packaged resource.
        packaged: the resource's file name in ``pipeline/resources``.

    Returns:
        ``(text, source)``.

    Raises:
        RuleFileError: the file cannot be read.
    """
    if path is None:
        ref = resources.files("pipeline.resources").joinpath(packaged)
        return ref.read_text(encoding="utf-8"), f"pipeline/resources/{packaged}"
    try:
        return Path(path).read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(f"{path}: cannot read the rule file: {exc}") from None


def dump_rules(data: dict[str, Any]) -> str:
    """Serialise validated rule data the way the packaged files are written.

    Rules in a list go one to a line when short, so that an error's line number points at the
    rule; other values are indented JSON.

    Args:
        data: the validated JSON object.

    Returns:
        The file text.
    """
    out = ["{"]
    items = list(data.items())
    for n, (key, value) in enumerate(items):
        comma = "," if n < len(items) - 1 else ""
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.append(f" {json.dumps(key)}: [")
            for m, rule in enumerate(value):
                one_line = json.dumps(rule, ensure_ascii=False)
                if len(one_line) > 160:  # one key a line, each value compact
                    fields = [f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in rule.items()]
                    one_line = "{\n   " + ",\n   ".join(fields) + "\n  }"
                out.append(f"  {one_line}{',' if m < len(value) - 1 else ''}")
            out.append(f" ]{comma}")
        else:
            text = json.dumps(value, ensure_ascii=False, indent=1).replace("\n", "\n ")
            out.append(f" {json.dumps(key)}: {text}{comma}")
    out.append("}")
    return "\n".join(out) + "\n"


class RuleFileComponent:
    """``to_disk`` / ``from_disk`` for a spaCy component whose data is one validated rule file.

    Subclasses set ``rules_file`` (the file name inside the component's folder), keep the parsed
    rules (an object with ``.data``) where :meth:`_saved_rules` finds them, and rebuild
    themselves from a rule file's text in :meth:`_restore`.
    """

    name: str
    rules_file: str

    def _saved_rules(self) -> Any:
        return getattr(self, "rules", None)

    def initialize(
        self,
        get_examples: Any = None,
        *,
        nlp: Any = None,
        rules_path: str | None = None,
    ) -> None:
        """Load the rules at build time (spaCy calls this from ``nlp.initialize()``).

        Args:
            get_examples: unused (spaCy's signature).
            nlp: the pipeline (unused here; a subclass may need its tokenizer).
            rules_path: a rule file; None uses the packaged one of the same name.

        Raises:
            RuleFileError: the rule file is invalid.
        """
        text, source = read_rule_text(rules_path, self.rules_file)
        self._restore(text, source)

    def _restore(self, text: str, source: str) -> None:
        raise NotImplementedError

    def to_disk(self, path: str | Path, *, exclude: Any = ()) -> None:
        """Write the rules into the component's folder.

        Args:
            path: the component folder (created if missing).
            exclude: unused (spaCy's signature).

        Raises:
            ValueError: the component was never initialised.
        """
        rules = self._saved_rules()
        if rules is None:
            raise ValueError(f"{self.name} has no rules to save: initialize it first")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / self.rules_file).write_text(dump_rules(rules.data), encoding="utf-8")

    def from_disk(self, path: str | Path, *, exclude: Any = ()) -> Any:
        """Read back what :meth:`to_disk` wrote and rebuild the component.

        Args:
            path: the component folder.
            exclude: unused (spaCy's signature).

        Returns:
            self.

        Raises:
            RuleFileError: the saved rule file is missing or invalid.
        """
        text, source = read_rule_text(Path(path) / self.rules_file, self.rules_file)
        self._restore(text, source)
        return self
