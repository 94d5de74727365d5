"""The project's modifier table (own wording).

``resources/modifiers.json`` describes the CPT (Level I) and HCPCS Level II modifiers a coder
needs most, each in the project's own words with a ``kind`` that the encounter rules use
(laterality and digits are ``anatomic``, 26/TC are ``professional-technical``...).
:func:`merge_modifiers` adds the rest of the HCPCS Level II modifiers from the CMS file.

The file is read by its pydantic model (:class:`ModifiersFile`) through
:func:`pipeline.rulefile.load_rules`, like every rule and lexicon file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field

from pipeline.kb.model import Modifier
from pipeline.rulefile import RuleFile, RuleModel, Text, entry_error, load_rules, read_rule_text, schema_field

logger = logging.getLogger(__name__)

MODIFIERS_RESOURCE = "modifiers.json"

# What a modifier does, as the encounter rules use it.
ModifierKind = Literal[
    "anatomic",
    "professional-technical",
    "em",
    "distinct-procedure",
    "repeat",
    "telehealth",
    "payer",
    "other",
]
MODIFIER_KINDS: tuple[str, ...] = get_args(ModifierKind)
# Kind given to HCPCS modifiers whose termination date has passed (see pipeline.kb.sources.hcpcs).
TERMINATED_KIND = "terminated"


class _Modifier(RuleModel):
    code: Annotated[str, Field(pattern=r"^[A-Z0-9]{2}$")]
    kind: ModifierKind
    description: Text


class ModifiersFile(RuleFile):
    """``modifiers.json`` (schema ``codesuggest.modifiers/1``)."""

    schema_id: Literal["codesuggest.modifiers/1"] = schema_field()
    version: str | None = None
    modifiers: tuple[_Modifier, ...]


def load_modifiers(path: Path | None = None) -> dict[str, Modifier]:
    """Load the project's modifier table.

    Args:
        path: read this file instead of the packaged ``resources/modifiers.json``.

    Returns:
        Modifier code -> :class:`~pipeline.kb.model.Modifier` with ``source="project"``, in the
        file's order.

    Raises:
        RuleFileError: wrong schema, unknown keys, a bad code or kind, an empty description, or
            a modifier listed twice; the message names the file, line and entry.
    """
    text, source = read_rule_text(MODIFIERS_RESOURCE, path)
    table: dict[str, Modifier] = {}
    for i, entry in enumerate(load_rules(ModifiersFile, text, source).modifiers):
        if entry.code in table:
            raise entry_error(text, source, ("modifiers", i), f"modifier {entry.code} is listed twice")
        table[entry.code] = Modifier(code=entry.code, description=entry.description, kind=entry.kind, source="project")
    logger.debug("loaded %d project modifiers", len(table))
    return table


def merge_modifiers(project: dict[str, Modifier], hcpcs: list[Modifier]) -> dict[str, Modifier]:
    """Combine the project's modifier table with the modifiers of the CMS HCPCS file.

    The project's entries win (our wording and ``kind``); HCPCS modifiers the project does not
    describe are added with the CMS description, except those the HCPCS reader marked
    terminated (kind ``"terminated"``), which are no longer reportable.

    Args:
        project: the table from :func:`load_modifiers`.
        hcpcs: ``HcpcsFile.modifiers`` from :func:`pipeline.kb.sources.hcpcs.read_hcpcs`.

    Returns:
        Modifier code -> modifier: the project's entries first, then the added HCPCS ones in
        file order.
    """
    merged = dict(project)
    for modifier in hcpcs:
        if modifier.code in merged or modifier.kind == TERMINATED_KIND:
            continue
        merged[modifier.code] = modifier
    return merged
