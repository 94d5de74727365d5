"""``cs_sections``: note sections (HPI, past medical history, assessment/plan...) by medspaCy.

medspaCy's ``Sectionizer`` does the matching and the section spans; this component owns the
rules (``resources/section_rules.json``, loaded strictly by :mod:`pipeline.nlp.components.section_rules`), hands them to
the Sectionizer through its API with medspaCy's default rules off, and copies the result into
the project's attributes:

- ``token._.cs_section``: the category of the section the token sits in (None before any heading);
- ``doc._.cs_section_spans``: ``(start_char, end_char, category)`` for every section;
- ``span._.cs_section`` for every mention in ``doc.spans["cs_mentions"]`` (its first token's
  section). In the assembled pipeline mentions come later, so ``cs_attributes`` does this again
  with :func:`assign_mention_sections`.

A heading with content on its own line ("Family history: mother with DM.") is an inline heading;
its section ends with that line (and the bullet, numbered or lower-case lines that continue
it) unless ``inline_ends_at_line`` is off. Narrative notes such as the CodiEsp case reports
have a single "Family history: ..." line in the middle of the story and no next heading: without
this the rest of the note would count as family history.

A heading matches in any letter case. Followed by a colon it must start a line or a sentence
(``ASSESSMENT/PLAN: Sprain...`` on one line is fine; "...the following results: ..." inside a
sentence is not a heading); without a colon it must stand alone on its line.

(No ``from __future__ import annotations`` here: spaCy resolves the factory's annotations.)
"""

import logging
import time
import warnings

from medspacy.section_detection import Sectionizer, SectionRule
from medspacy.section_detection.util import is_end_line, is_start_line
from spacy.language import Language
from spacy.tokens import Doc

from pipeline.nlp.components.rules import RuleFileComponent
from pipeline.nlp.components.section_rules import SECTION_RULES_FILE, SectionRules, load_section_rules
from pipeline.nlp.extensions import MENTIONS, record_timing, register_extensions

logger = logging.getLogger(__name__)

# Every heading is a phrase, so medspaCy's token Matcher is empty and spaCy warns at each call.
warnings.filterwarnings("ignore", message=r".*\[W036\].*", category=UserWarning)

_BULLETS = frozenset({"-", "*", "•", "·", "▪", "◦", "‣", "–", "—"})


@Language.factory(
    "cs_sections",
    requires=["token.is_sent_start"],
    assigns=["token._.cs_section", "doc._.cs_section_spans", "span._.cs_section"],
    default_config={"max_section_length": None, "inline_ends_at_line": True},
)
def make_sections(
    nlp: Language, name: str, max_section_length: int | None, inline_ends_at_line: bool
) -> "ClinicalSectionizer":
    """Create the ``cs_sections`` component (see :class:`ClinicalSectionizer`).

    Args:
        nlp: the pipeline.
        name: component name.
        max_section_length: at most this many tokens after a heading belong to its section
            (None: up to the next heading).
        inline_ends_at_line: an inline heading's section ends with its line (see the module
            docstring).

    Returns:
        The component.
    """
    return ClinicalSectionizer(
        nlp, name, max_section_length=max_section_length, inline_ends_at_line=inline_ends_at_line
    )


class _HeadingSectionizer(Sectionizer):
    """medspaCy's Sectionizer with the project's placement rule for headings.

    medspaCy can only require every heading to start a line; here a heading ending in ':' may
    also start a sentence, and one without a colon must be alone on its line.
    """

    def filter_start_lines(self, doc: Doc, matches: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        kept = []
        for match in matches:
            start, end = match[1], match[2]
            at_line_start = is_start_line(start, doc, self.newline_pattern) or (
                start > 0 and doc[start - 1].text in _BULLETS and is_start_line(start - 1, doc, self.newline_pattern)
            )
            if doc[end - 1].text == ":":
                if at_line_start or doc[start].is_sent_start:
                    kept.append(match)
            elif at_line_start and is_end_line(end - 1, doc, self.newline_pattern):
                kept.append(match)
        return kept


class ClinicalSectionizer(RuleFileComponent):
    """Finds section headings with medspaCy's Sectionizer and records section categories.

    Args:
        nlp: the pipeline (its tokenizer splits the heading literals into tokens).
        name: component name.
        max_section_length: at most this many tokens after a heading (None: no limit).
        inline_ends_at_line: an inline heading's section ends with its line.
    """

    rules_file = SECTION_RULES_FILE

    def __init__(
        self,
        nlp: Language,
        name: str = "cs_sections",
        *,
        max_section_length: int | None = None,
        inline_ends_at_line: bool = True,
    ):
        register_extensions()
        self.name = name
        self.max_section_length = max_section_length
        self.inline_ends_at_line = inline_ends_at_line
        self.rules: SectionRules | None = None
        self._nlp = nlp
        self._sectionizer: Sectionizer | None = None

    # -- building ------------------------------------------------------------------------------
    def set_rules(self, rules: SectionRules) -> None:
        """Build the Sectionizer from validated rules.

        Args:
            rules: the heading rules.
        """
        sectionizer = _HeadingSectionizer(
            self._nlp,
            name=f"{self.name}.medspacy",
            rules=None,
            max_section_length=self.max_section_length,
            require_start_line=True,
            span_attrs=None,
            input_span_type="group",
            span_group_name=MENTIONS,
        )
        tokenizer = self._nlp.tokenizer
        medspacy_rules = []
        for spec in rules.rules:
            parents = list(spec.parents) or None
            # Phrases (PhraseMatcher, looked up by hash) where the literal tokenizes back into
            # itself with and without the colon; a token pattern with an optional colon else.
            variants = [spec.literal, f"{spec.literal} :"] if spec.pattern is None else []
            words = [tuple(t.lower_ for t in tokenizer(v.lower()) if not t.is_space) for v in variants]
            if variants and len(words[1]) == len(words[0]) + 1 and words[1][-1] == ":":
                for variant in (" ".join(words[0]), " ".join(words[1])):
                    medspacy_rules.append(SectionRule(literal=variant, category=spec.category, parents=parents))
                continue
            if spec.pattern is not None:
                pattern = [*spec.pattern]
            else:
                pattern = [{"LOWER": t.lower_} for t in tokenizer(spec.literal) if not t.is_space]
            pattern.append({"ORTH": ":", "OP": "?"})
            medspacy_rules.append(
                SectionRule(literal=spec.literal, category=spec.category, pattern=pattern, parents=parents)
            )
        sectionizer.add(medspacy_rules)
        self.rules = rules
        self._sectionizer = sectionizer
        logger.debug("cs_sections: %d heading rules", len(medspacy_rules))

    # -- annotating ----------------------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        """Set ``token._.cs_section``, ``doc._.cs_section_spans`` and mentions' ``cs_section``."""
        if self._sectionizer is None:
            raise ValueError("cs_sections has no rules: initialize the pipeline or load it from disk")
        started = time.perf_counter()
        spans: list[tuple[int, int, str]] = []
        if len(doc):
            self._sectionizer(doc)
            for section in doc._.sections:
                category = section.category
                start, end = section.section_span
                if category is not None and self.inline_ends_at_line:
                    end = _inline_section_end(doc, section.title_end, end)
                for token in doc[start:end]:
                    token._.cs_section = category
                # Trailing whitespace, and the bullet of the next heading, are not part of it.
                while end > start and (
                    doc[end - 1].is_space
                    or (doc[end - 1].text in _BULLETS and end - 1 > start and doc[end - 2].is_space)
                ):
                    end -= 1
                if category is not None and end > start:
                    last = doc[end - 1]
                    spans.append((doc[start].idx, last.idx + len(last), category))
        doc._.cs_section_spans = spans
        assign_mention_sections(doc)
        record_timing(doc, self.name, started)
        return doc

    # -- persistence (pipeline.nlp.components.rules.RuleFileComponent) -----------------------------
    def _restore(self, text: str, source: str) -> None:
        self.set_rules(load_section_rules(text, source))


def _line_break(token_text: str) -> int:
    return token_text.count("\n") + token_text.count("\r") - token_text.count("\r\n")


def _inline_section_end(doc: Doc, title_end: int, body_end: int) -> int:
    """End of an inline heading's section: its line plus the lines that continue it.

    Returns ``body_end`` unchanged when the heading stands alone on its line.
    """
    i = title_end
    while i < body_end and doc[i].is_space and not _line_break(doc[i].text):
        i += 1
    if i >= body_end or _line_break(doc[i].text):
        return body_end  # nothing after the heading on its line
    while i < body_end:
        token = doc[i]
        if not token.is_space or not _line_break(token.text):
            i += 1
            continue
        if _line_break(token.text) > 1:
            return i + 1  # a blank line ends it
        j = i + 1
        while j < body_end and doc[j].is_space and not _line_break(doc[j].text):
            j += 1
        if j >= body_end:
            return body_end
        first = doc[j].text
        continues = (
            first in _BULLETS
            or first[0].islower()
            or (first.isdigit() and j + 1 < len(doc) and doc[j + 1].text in (".", ")"))
        )
        if not continues:
            return i + 1
        i = j
    return body_end


def assign_mention_sections(doc: Doc) -> None:
    """Set ``span._.cs_section`` of every mention to its first token's section.

    Args:
        doc: a document annotated by ``cs_sections``; without mentions nothing happens.
    """
    if MENTIONS not in doc.spans:
        return
    for span in doc.spans[MENTIONS]:
        span._.cs_section = doc[span.start]._.cs_section
