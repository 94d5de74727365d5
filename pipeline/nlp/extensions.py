"""Every custom ``Doc`` / ``Span`` / ``Token`` attribute of the pipeline, declared once, here.

Components import :func:`register_extensions` and call it in their factory; it is idempotent.
medspaCy's ConText additionally declares its own span attributes (``is_negated``,
``is_historical``, ``is_family``, ``is_hypothetical``, ``is_uncertain``, ``modifiers``); the
sectionizer declares ``section``-related ones. They are read through :func:`assertions_of`.

Mentions live in the span group ``doc.spans[MENTIONS]`` (a group rather than ``doc.ents``
because knowledge-base terms overlap: "pain" inside "chest pain").
"""

from __future__ import annotations

import time
from typing import Any

from spacy.tokens import Doc, Span, Token

MENTIONS = "cs_mentions"
ASSERTIONS = ("negated", "historical", "family", "hypothetical", "uncertain")

# (object, name, default); the comment after each gives the value type.
_EXTENSIONS: tuple[tuple[Any, str, Any], ...] = (
    # Doc
    (
        Doc,
        "cs_abbreviations",
        None,
    ),  # dict[str, str]: short form (lower) -> long form, defined in the note
    (
        Doc,
        "cs_candidates",
        None,
    ),  # dict[str, pipeline.nlp.candidates.CodeCandidate]: code -> aggregated candidate
    (
        Doc,
        "cs_section_spans",
        None,
    ),  # list[tuple[int, int, str]]: (start_char, end_char, section category)
    # dict[str, Any]: new_patient, total_minutes, settings, imaging_interpretation_only...
    (Doc, "cs_encounter", None),
    (Doc, "cs_timings", None),  # dict[str, float]: component name -> seconds spent on this doc
    # Span (mentions)
    (
        Span,
        "cs_kind",
        None,
    ),  # str: diagnosis | symptom | procedure | supply | external | drug | finding
    (Span, "cs_matches", None),  # list[pipeline.nlp.terms.TermMatch]: knowledge-base terms matched here
    (Span, "cs_section", None),  # str | None: section category the mention sits in
    (Span, "cs_laterality", None),  # str | None: right | left | bilateral
    (Span, "cs_episode", None),  # str | None: initial | subsequent | sequela
    (Span, "cs_acuity", None),  # str | None: acute | chronic | acute_on_chronic
    (Span, "cs_site", None),  # list[str]: anatomical site words in or next to the mention
    (Span, "cs_views", None),  # int | None: number of imaging views stated near a procedure mention
    (
        Span,
        "cs_candidates",
        None,
    ),  # list[pipeline.nlp.candidates.Candidate]: candidate codes, best first
    (
        Span,
        "cs_attributes",
        None,
    ),  # dict[str, Any]: any further attribute (fracture displacement, healing...)
    # Token
    (Token, "cs_key", None),  # str | None: match key of the token (pipeline.nlp.textnorm)
    (Token, "cs_section", None),  # str | None: section category of the token
)

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
    for obj, name, default in _EXTENSIONS:
        if not obj.has_extension(name):
            obj.set_extension(name, default=default)
    for attr in CONTEXT_ATTRIBUTES:
        if not Span.has_extension(attr):
            Span.set_extension(attr, default=False)


def record_timing(doc: Doc, name: str, started: float) -> None:
    """Add the seconds since ``started`` (a ``time.perf_counter()`` reading) to ``doc._.cs_timings``."""
    timings = doc._.cs_timings
    if timings is None:
        timings = doc._.cs_timings = {}
    timings[name] = time.perf_counter() - started


def assertions_of(span: Span) -> dict[str, bool]:
    """Return the five assertion booleans of a mention."""
    underscore = span._  # each ``span._`` builds a new accessor object: one, not five
    return {ours: bool(getattr(underscore, attr, False)) for attr, ours in CONTEXT_ATTRIBUTES.items()}


register_extensions()
