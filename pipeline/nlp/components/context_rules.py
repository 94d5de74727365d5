"""The ConText rules of ``cs_context`` (``resources/context_rules.json``) and their strict loader."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, model_validator

from pipeline.nlp.components.rules import MentionKind, TokenPattern
from pipeline.rulefile import NonBlank, PositiveInt, RuleFile, RuleModel, entry_error, load_rules, schema_field

CONTEXT_RULES_FILE = "context_rules.json"

ContextCategory = Literal["NEGATED_EXISTENCE", "HISTORICAL", "FAMILY", "HYPOTHETICAL", "POSSIBLE_EXISTENCE"]
CONTEXT_CATEGORIES: tuple[str, ...] = get_args(ContextCategory)


@dataclass(frozen=True)
class ContextRuleSpec:
    """One ConText trigger (the keys of medspaCy's ``ConTextRule``).

    Attributes:
        literal: the trigger phrase (matched case-insensitively when ``pattern`` is None).
        category: one of :data:`CONTEXT_CATEGORIES`.
        direction: ``FORWARD``, ``BACKWARD``, ``BIDIRECTIONAL``, ``TERMINATE`` or ``PSEUDO``.
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


class _ContextRule(RuleModel):
    literal: NonBlank
    category: ContextCategory
    direction: Literal["FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE", "PSEUDO"]
    pattern: TokenPattern | None = None
    max_scope: PositiveInt | None = None
    max_targets: PositiveInt | None = None
    allowed_types: tuple[MentionKind, ...] | None = None
    excluded_types: tuple[MentionKind, ...] | None = None
    terminated_by: tuple[ContextCategory, ...] = ()

    @model_validator(mode="after")
    def _one_type_list(self) -> _ContextRule:
        if self.allowed_types is not None and self.excluded_types is not None:
            raise ValueError("give allowed_types or excluded_types, not both")
        return self


class ContextRulesFile(RuleFile):
    """``context_rules.json`` (schema ``codesuggest.context-rules/1``)."""

    schema_id: Literal["codesuggest.context-rules/1"] = schema_field()
    context_rules: Annotated[tuple[_ContextRule, ...], Field(min_length=1)]


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
    f = load_rules(ContextRulesFile, text, source)
    specs: list[ContextRuleSpec] = []
    seen: set[str] = set()
    for i, rule in enumerate(f.context_rules):
        if rule.literal.lower() in seen:
            raise entry_error(text, source, ("context_rules", i), f"duplicate literal {rule.literal!r}")
        seen.add(rule.literal.lower())
        specs.append(
            ContextRuleSpec(
                rule.literal,
                rule.category,
                rule.direction,
                rule.pattern,
                rule.max_scope,
                rule.max_targets,
                rule.allowed_types,
                rule.excluded_types,
                rule.terminated_by,
            )
        )
    return ContextRules(tuple(specs), json.loads(text), source)
