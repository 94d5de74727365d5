"""``codesuggest annotate``: what the spaCy pipeline read out of a note, as plain data.

Offsets are character offsets into the note as given, 0-based, end exclusive.
"""

from __future__ import annotations

from typing import Any

from spacy.language import Language

from pipeline.errors import EmptyNoteError
from pipeline.nlp.extensions import MENTIONS, assertions_of


def annotate_text(nlp: Language, text: str, top: int = 5) -> dict[str, Any]:
    """Run the pipeline and return mentions with context, attributes and candidates.

    Args:
        nlp: the loaded pipeline.
        text: the note.
        top: candidates kept per mention.

    Returns:
        ``{"length", "sections", "mentions": [...]}``.

    Raises:
        EmptyNoteError: the text is empty or whitespace only.
    """
    if not text.strip():
        raise EmptyNoteError("the note text is empty or whitespace only")
    doc = nlp(text)
    mentions = []
    for span in doc.spans[MENTIONS]:
        mentions.append(
            {
                "start": span.start_char,
                "end": span.end_char,
                "text": span.text,
                "kind": span._.cs_kind,
                "section": span._.cs_section,
                "assertions": assertions_of(span),
                "attributes": {
                    "laterality": span._.cs_laterality,
                    "episode": span._.cs_episode,
                    "acuity": span._.cs_acuity,
                    "site": list(span._.cs_site or []),
                    "views": span._.cs_views,
                    **(span._.cs_attributes or {}),
                },
                "candidates": [
                    {
                        "code": c.code,
                        "system": c.system,
                        "source": c.source,
                        "term": c.term,
                        "similarity": round(c.similarity, 3),
                    }
                    for c in (span._.cs_candidates or [])[:top]
                ],
            }
        )
    sections = [{"start": s, "end": e, "category": c} for s, e, c in (doc._.cs_section_spans or [])]
    return {"length": len(text), "sections": sections, "mentions": mentions}


def format_annotations(document: dict[str, Any]) -> str:
    """Human-readable form of :func:`annotate_text`'s result."""
    lines = [f"{len(document['mentions'])} mentions in {document['length']} characters"]
    for m in document["mentions"]:
        flags = [k for k, v in m["assertions"].items() if v]
        attrs = [f"{k}={v}" for k, v in m["attributes"].items() if v not in (None, [], {})]
        cands = ", ".join(f"{c['code']} ({c['source']})" for c in m["candidates"])
        lines.append(
            f"{m['start']:>6}-{m['end']:<6} {m['text']!r} [{m['kind']}; section={m['section']}]"
            + (f" {' '.join(flags)}" if flags else "")
            + (f" {' '.join(attrs)}" if attrs else "")
            + (f"\n{'':15}-> {cands}" if cands else "")
        )
    return "\n".join(lines) + "\n"
