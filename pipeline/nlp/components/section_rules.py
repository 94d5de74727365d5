"""The section rules of ``cs_sections`` and ``cs_sentences`` (``resources/section_rules.json``), strictly loaded."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, model_validator

from pipeline.nlp.components.rules import TokenPattern
from pipeline.rulefile import NonBlank, RuleFile, RuleModel, entry_error, load_rules, schema_field

SECTION_RULES_FILE = "section_rules.json"

SectionCategory = Literal[
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
]
SECTION_CATEGORIES: tuple[str, ...] = get_args(SectionCategory)


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

    def literals(self, category: str) -> tuple[str, ...]:
        """The headings written for one category, lower case, in file order."""
        return tuple(r.literal.lower() for r in self.rules if r.category == category and r.pattern is None)


class _SectionRule(RuleModel):
    category: SectionCategory
    literal: NonBlank | None = None
    pattern: TokenPattern | None = None
    parents: tuple[SectionCategory, ...] = ()

    @model_validator(mode="after")
    def _named(self) -> _SectionRule:
        if self.literal is None and self.pattern is None:
            raise ValueError("needs a literal or a pattern")
        return self


class SectionRulesFile(RuleFile):
    """``section_rules.json`` (schema ``codesuggest.section-rules/1``)."""

    schema_id: Literal["codesuggest.section-rules/1"] = schema_field()
    section_rules: Annotated[tuple[_SectionRule, ...], Field(min_length=1)]


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
    f = load_rules(SectionRulesFile, text, source)
    specs: list[SectionRuleSpec] = []
    seen: dict[str, str] = {}
    for i, rule in enumerate(f.section_rules):
        name = (rule.literal or json.dumps(rule.pattern, sort_keys=True)).strip().lower()
        if name in seen:
            raise entry_error(text, source, ("section_rules", i), f"duplicate heading {name!r} (also {seen[name]})")
        seen[name] = rule.category
        specs.append(SectionRuleSpec(rule.category, rule.literal or rule.category, rule.pattern, rule.parents))
    return SectionRules(tuple(specs), json.loads(text), source)
