"""The ConText rules of ``cs_context`` (``resources/context_rules.json``) and their strict loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.nlp.components.rules import (
    RuleChecker,
    check_keys,
    check_pattern,
    mention_kinds,
    parse_rule_text,
    string_list,
)

CONTEXT_RULES_SCHEMA = "codesuggest.context-rules/1"
CONTEXT_RULES_FILE = "context_rules.json"

CONTEXT_CATEGORIES = (
    "NEGATED_EXISTENCE",
    "HISTORICAL",
    "FAMILY",
    "HYPOTHETICAL",
    "POSSIBLE_EXISTENCE",
)
CONTEXT_DIRECTIONS = ("FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE", "PSEUDO")


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


def _positive_int(value: Any, what: str, check: RuleChecker, key: str, index: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise check.error(f"{what} must be a positive integer, not {value!r}", key, index)
    return value


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
    data, check = parse_rule_text(text, source, CONTEXT_RULES_SCHEMA, {"context_rules"}, {"context_rules"})
    raw = data["context_rules"]
    if not isinstance(raw, list) or not raw:
        raise check.error("context_rules must be a non-empty list", "context_rules")
    specs: list[ContextRuleSpec] = []
    seen: set[str] = set()
    key = "context_rules"
    for i, rule in enumerate(raw):
        check_keys(rule, _CONTEXT_KEYS, check, key, i)
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
        pattern = check_pattern(rule["pattern"], check, key, i) if rule.get("pattern") is not None else None
        max_scope = _positive_int(rule["max_scope"], "max_scope", check, key, i) if "max_scope" in rule else None
        max_targets = (
            _positive_int(rule["max_targets"], "max_targets", check, key, i) if "max_targets" in rule else None
        )
        allowed = (
            mention_kinds(rule["allowed_types"], "allowed_types", check, key, i) if "allowed_types" in rule else None
        )
        excluded = (
            mention_kinds(rule["excluded_types"], "excluded_types", check, key, i) if "excluded_types" in rule else None
        )
        if allowed is not None and excluded is not None:
            raise check.error("give allowed_types or excluded_types, not both", key, i)
        terminated_by = string_list(rule.get("terminated_by", []), "terminated_by", check, key, i)
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
