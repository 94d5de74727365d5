"""The section rules of ``cs_sections`` and ``cs_sentences`` (``resources/section_rules.json``), strictly loaded."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pipeline.nlp.components.rules import check_keys, check_pattern, parse_rule_text, string_list

SECTION_RULES_SCHEMA = "codesuggest.section-rules/1"
SECTION_RULES_FILE = "section_rules.json"

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
    data, check = parse_rule_text(text, source, SECTION_RULES_SCHEMA, {"section_rules"}, {"section_rules"})
    raw = data["section_rules"]
    if not isinstance(raw, list) or not raw:
        raise check.error("section_rules must be a non-empty list", "section_rules")
    specs: list[SectionRuleSpec] = []
    seen: dict[str, str] = {}
    for i, rule in enumerate(raw):
        check_keys(rule, {"category", "literal", "pattern", "parents"}, check, "section_rules", i)
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
            check_pattern(pattern, check, "section_rules", i)
        name = (literal or json.dumps(pattern, sort_keys=True)).strip().lower()
        if name in seen:
            raise check.error(f"duplicate heading {name!r} (also {seen[name]})", "section_rules", i)
        seen[name] = category
        parents = string_list(rule.get("parents", []), "parents", check, "section_rules", i)
        for parent in parents:
            if parent not in SECTION_CATEGORIES:
                raise check.error(f"unknown parent category {parent!r}", "section_rules", i)
        specs.append(SectionRuleSpec(category, literal or category, pattern, parents))
    return SectionRules(tuple(specs), data, source)
