"""Every custom ``Doc`` / ``Span`` / ``Token`` attribute of the pipeline, declared once, here.

Components import :func:`register_extensions` and call it in their factory; it is idempotent.
medspaCy's ConText additionally declares its own span attributes (``is_negated``,
``is_historical``, ``is_family``, ``is_hypothetical``, ``is_uncertain``, ``modifiers``); the
sectionizer declares ``section``-related ones. They are read through :func:`assertions_of`.

Mentions live in the span group ``doc.spans[MENTIONS]`` (a group rather than ``doc.ents``
because knowledge-base terms overlap: "pain" inside "chest pain").
"""

from __future__ import annotations

from typing import Any

from spacy.tokens import Doc, Span, Token

MENTIONS = "cs_mentions"
ASSERTIONS = ("negated", "historical", "family", "hypothetical", "uncertain")

# name -> (object, default); the comment after each gives the value type.
_EXTENSIONS: dict[str, tuple[type, Any]] = {
    # Doc
    "cs_abbreviations": (Doc, None),  # dict[str, str]: short form (lower) -> long form, defined in the note
    "cs_candidates": (Doc, None),  # dict[str, pipeline.candidates.CodeCandidate]: code -> aggregated candidate
    "cs_section_spans": (Doc, None),  # list[tuple[int, int, str]]: (start_char, end_char, section category)
    "cs_timings": (Doc, None),  # dict[str, float]: component name -> seconds spent on this doc
    # Span (mentions)
    "cs_kind": (Span, None),  # str: diagnosis | symptom | procedure | supply | external | drug | finding
    "cs_matches": (Span, None),  # list[pipeline.terms.TermMatch]: knowledge-base terms matched here
    "cs_section": (Span, None),  # str | None: section category the mention sits in
    "cs_laterality": (Span, None),  # str | None: right | left | bilateral
    "cs_episode": (Span, None),  # str | None: initial | subsequent | sequela
    "cs_acuity": (Span, None),  # str | None: acute | chronic | acute_on_chronic
    "cs_site": (Span, None),  # list[str]: anatomical site words in or next to the mention
    "cs_views": (Span, None),  # int | None: number of imaging views stated near a procedure mention
    "cs_candidates": (Span, None),  # list[pipeline.candidates.Candidate]: candidate codes, best first
    "cs_attributes": (Span, None),  # dict[str, Any]: any further attribute (fracture displacement, healing...)
    # Token
    "cs_key": (Token, None),  # str | None: match key of the token (pipeline.textnorm)
    "cs_section": (Token, None),  # str | None: section category of the token
}

# medspaCy ConText attribute names -> our assertion names.
CONTEXT_ATTRIBUTES = {
    "is_negated": "negated",
    "is_historical": "historical",
    "is_family": "family",
    "is_hypothetical": "hypothetical",
    "is_uncertain": "uncertain",
}


def register_extensions() -> None:
    """Declare every custom attribute (safe to call many times)."""
    for name, (obj, default) in _EXTENSIONS.items():
        if not obj.has_extension(name):
            obj.set_extension(name, default=default)
    for attr in CONTEXT_ATTRIBUTES:
        if not Span.has_extension(attr):
            Span.set_extension(attr, default=False)


def assertions_of(span: Span) -> dict[str, bool]:
    """Return the five assertion booleans of a mention."""
    return {ours: bool(getattr(span._, attr, False)) for attr, ours in CONTEXT_ATTRIBUTES.items()}


register_extensions()
