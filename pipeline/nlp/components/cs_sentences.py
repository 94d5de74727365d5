"""``cs_sentences``: a rule-based sentence splitter for line-structured clinical notes.

Clinical notes are written in lines: headings, lists, vitals, one finding a line, and (in the
CodiEsp case reports) one sentence a line. So every line break ends a sentence, except a soft
wrap: a long line that stops without terminal punctuation and a next line that continues in
lower case. Inside a line, ``.``, ``?`` and ``!`` end a sentence when a capital or a digit
follows, except after abbreviations with periods (Dr., e.g., b.i.d., p.r.n., vs....; "No." and
"Fig." before a number), initials and list numbers ("1. Sprain"). A unit's period ("2.5 cm. The
rest...") does end the sentence (measured: docs/benchmarks.md). A known heading followed by a
colon ("ASSESSMENT/PLAN:", "Plan:") starts a sentence even in the middle of a line, and so does a
bullet. Semicolons never split.

(No ``from __future__ import annotations`` here: spaCy resolves the factory's annotations when
it builds the component.)

The headings come from the section rule file (the same one ``cs_sections`` uses), so a heading
added there also splits sentences. See docs/benchmarks.md "Sentence splitting" for how this
compares with PyRuSH and spaCy's sentencizer.
"""

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

import numpy
from spacy.attrs import SENT_START
from spacy.language import Language
from spacy.tokens import Doc

from pipeline.nlp.components.rules import RuleFileComponent
from pipeline.nlp.components.section_rules import SECTION_RULES_FILE, SectionRules, load_section_rules
from pipeline.nlp.extensions import record_timing, register_extensions

logger = logging.getLogger(__name__)

# Abbreviations written with periods, lower case, without the final period. After these a
# period does not end the sentence.
ABBREVIATIONS = frozenset(
    {
        "dr", "mr", "mrs", "ms", "prof", "st", "sr", "jr", "vs", "e.g", "i.e", "approx", "a.m",
        "p.m", "b.i.d", "t.i.d", "q.d", "q.i.d", "p.r.n", "p.o", "q.h.s", "h.s", "dept", "pt",
        "pts", "ca", "cf", "al", "resp", "temp", "inc", "ltd", "co", "ave",
    }
)  # fmt: skip
# Units ("2.5 cm. He had...") and "etc." are deliberately NOT in that list: in the CodiEsp train
# and dev notes every in-line "cm.", "mm.", "mg.", "ml/min.", "sec.", "etc." followed by a
# capital (about 50) ends a sentence (see docs/benchmarks.md, "Sentence splitting").
# Abbreviations that only hide a period before a number ("No. 5", "Fig. 2").
NUMBER_ABBREVIATIONS = frozenset({"no", "fig", "nos", "vol", "ref", "p", "pp", "sec"})
BULLETS = frozenset({"-", "*", "•", "·", "▪", "◦", "‣", "–", "—", "o"})
INLINE_BULLETS = frozenset({"•", "▪", "◦", "‣"})
TERMINAL = frozenset({".", "?", "!"})
CLOSERS = frozenset({'"', "'", "”", "’", ")", "]", "»"})


@Language.factory(
    "cs_sentences",
    assigns=["token.is_sent_start"],
    default_config={"soft_wrap_min_chars": 40},
)
def make_sentences(nlp: Language, name: str, soft_wrap_min_chars: int) -> "ClinicalSentencizer":
    """Create the ``cs_sentences`` component (see :class:`ClinicalSentencizer`).

    Args:
        nlp: the pipeline.
        name: component name.
        soft_wrap_min_chars: a line shorter than this is never joined with the next one.

    Returns:
        The component.
    """
    return ClinicalSentencizer(nlp, name, soft_wrap_min_chars=soft_wrap_min_chars)


class ClinicalSentencizer(RuleFileComponent):
    """Sets ``token.is_sent_start`` for clinical text (see the module docstring).

    Args:
        nlp: the pipeline (unused; spaCy's factory signature).
        name: component name.
        soft_wrap_min_chars: a line shorter than this ends its sentence even when the next line
            starts in lower case (short lines are list items, not wrapped prose).
    """

    rules_file = SECTION_RULES_FILE

    def __init__(
        self,
        nlp: Language | None = None,
        name: str = "cs_sentences",
        *,
        soft_wrap_min_chars: int = 40,
    ):
        register_extensions()
        self.name = name
        self.soft_wrap_min_chars = soft_wrap_min_chars
        self.section_rules: SectionRules | None = None
        self._headings: dict[str, list[tuple[str, ...]]] = {}
        self._nlp = nlp  # its tokenizer splits headings into tokens

    # -- building ------------------------------------------------------------------------------
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Any]] | None = None,
        *,
        nlp: Language | None = None,
        rules_path: str | None = None,
    ) -> None:
        """Load the headings that split sentences inside a line.

        Args:
            get_examples: unused (spaCy's signature).
            nlp: the pipeline, whose tokenizer splits the headings into tokens.
            rules_path: a section rule file; None uses the packaged ``section_rules.json``.

        Raises:
            RuleFileError: the rule file is invalid.
        """
        if nlp is not None:
            self._nlp = nlp
        super().initialize(get_examples, nlp=nlp, rules_path=rules_path)

    def _set_rules(self, rules: SectionRules) -> None:
        tokenize = self._nlp.tokenizer if self._nlp is not None else None
        headings: dict[str, list[tuple[str, ...]]] = {}
        for rule in rules.rules:
            if rule.pattern is not None:
                continue
            words = (
                tuple(t.lower_ for t in tokenize(rule.literal))
                if tokenize is not None
                else tuple(rule.literal.lower().split())
            )
            if words:
                headings.setdefault(words[0], []).append(words)
        for options in headings.values():
            options.sort(key=len, reverse=True)
        self.section_rules = rules
        self._headings = headings

    # -- annotating ----------------------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        """Set ``token.is_sent_start`` on every token of ``doc``."""
        started = time.perf_counter()
        starts = self.sentence_starts(doc)
        if starts:
            # One array write: the token.is_sent_start setter re-checks the whole doc each time.
            values = numpy.array([1 if s else -1 for s in starts], dtype="int64").astype("uint64")
            doc.from_array([SENT_START], cast(Any, values.reshape(-1, 1)))
        record_timing(doc, self.name, started)
        return doc

    def sentence_starts(self, doc: Doc) -> list[bool]:
        """Decide, for every token, whether it starts a sentence.

        Args:
            doc: a tokenized document.

        Returns:
            One boolean a token; the first token is always True. Whitespace tokens stay with the
            sentence before them.
        """
        n = len(doc)
        starts = [False] * n
        if n == 0:
            return starts
        texts = [t.text for t in doc]
        spaces = [t.is_space for t in doc]
        trail = [bool(t.whitespace_) for t in doc]
        idx = [t.idx for t in doc]
        prev = -1  # the previous non-space token
        breaks = 0  # line breaks between prev and the current token
        line_first = 0  # first non-space token of the current line
        enumerated = False  # an enumeration "1." was seen on this line
        for i in range(n):
            text = texts[i]
            if spaces[i]:
                breaks += text.count("\n") + text.count("\r") - text.count("\r\n")
                continue
            if prev < 0:
                start = False  # stays with leading whitespace (token 0 is set below)
            elif breaks >= 2:
                start = True
            elif breaks == 1:
                start = not self._soft_wrap(texts, idx, line_first, prev, i)
            else:
                start, enumerated = self._inline_start(texts, spaces, trail, line_first, prev, i, enumerated, starts)
            if breaks or prev < 0:
                line_first = i
                enumerated = self._enumeration_at(texts, spaces, i)
            starts[i] = start
            prev = i
            breaks = 0
        starts[0] = True
        return starts

    # -- rules ---------------------------------------------------------------------------------
    def _soft_wrap(self, texts: list[str], idx: list[int], line_first: int, prev: int, i: int) -> bool:
        """True when the line break between ``prev`` and ``i`` is a wrap inside a sentence."""
        first_char = texts[i][0]
        if not first_char.islower() or texts[i] in BULLETS:
            return False
        last = texts[prev]
        if last[-1] in ".?!:" or last in CLOSERS:
            return False
        if idx[prev] + len(last) - idx[line_first] < self.soft_wrap_min_chars:
            return False
        if self._heading_at(texts, i, need_colon=True) or self._heading_line(texts, line_first, prev):
            return False
        return not _all_caps(texts[line_first : prev + 1])

    def _inline_start(
        self,
        texts: list[str],
        spaces: list[bool],
        trail: list[bool],
        line_first: int,
        prev: int,
        i: int,
        enumerated: bool,
        starts: list[bool],
    ) -> tuple[bool, bool]:
        """Whether token ``i`` starts a sentence on the same line as ``prev``; also the updated
        enumeration flag of the line."""
        text = texts[i]
        if text in INLINE_BULLETS:
            return True, enumerated
        first = text[0]
        # An enumeration inside a line: "Diagnoses: 1. Sprain 2. Fracture".
        if text.isdigit() and len(text) <= 2 and self._enumeration_at(texts, spaces, i):
            if text == "1" and texts[prev] in (":", "-"):
                return True, True
            if enumerated and text != "1" and texts[prev] not in TERMINAL:
                return True, True
        before = texts[prev]
        if (
            first.isupper()
            and not (before in ("/", "&", "-") or (before[0].isupper() and before.isalpha()))
            and self._heading_at(texts, i, need_colon=True)
        ):
            return True, enumerated  # not inside a longer heading ("Past Medical History:")
        if not (first.isupper() or first.isdigit()):
            return False, enumerated
        # Skip closing quotes and brackets: 'said "no." Then'.
        p = prev
        while texts[p] in CLOSERS and p > line_first and not spaces[p - 1]:
            p -= 1
        last = texts[p]
        if last in ("?", "!"):
            return True, enumerated
        if not last.endswith("."):
            return False, enumerated
        if last == ".":
            w = p - 1
            if w < 0 or spaces[w]:
                return True, enumerated
            word = texts[w]
        else:
            w = p
            word = last[:-1]
        low = word.lower().rstrip(".")
        if low in ABBREVIATIONS:
            return False, enumerated
        if low in NUMBER_ABBREVIATIONS and first.isdigit():
            return False, enumerated
        if len(word) == 1 and word.isalpha() and word.isupper() and (w == line_first or trail[w - 1]):
            return False, enumerated  # an initial: "J. Smith" (but not "38 °C.")
        if word.isdigit() and len(word) <= 2 and (w == line_first or starts[w]):
            return False, enumerated  # list number: "1. Sprain"
        return True, enumerated

    def _enumeration_at(self, texts: list[str], spaces: list[bool], i: int) -> bool:
        """True when tokens ``i`` are "<number>." or "<number>)" followed by a word."""
        n = len(texts)
        return (
            texts[i].isdigit()
            and len(texts[i]) <= 2
            and i + 2 < n
            and texts[i + 1] in (".", ")")
            and not spaces[i + 2]
            and texts[i + 2][0].isalpha()
        )

    def _heading_at(self, texts: list[str], i: int, need_colon: bool) -> bool:
        """True when a known heading (or an ALL-CAPS label) and ':' start at token ``i``."""
        options = self._headings.get(texts[i].lower())
        n = len(texts)
        if options:
            for words in options:
                end = i + len(words)
                if end < n and texts[end] == ":" and tuple(t.lower() for t in texts[i:end]) == words:
                    return True
        # A generic ALL-CAPS label: "SUBJECTIVE:", "MEDICAL DECISION MAKING:".
        j = i
        letters = 0
        while j < n and j - i < 5 and ((texts[j].isalpha() and texts[j].isupper()) or texts[j] in ("/", "&")):
            letters += len(texts[j]) if texts[j].isalpha() else 0
            j += 1
        return need_colon and j > i and j < n and texts[j] == ":" and letters >= 4

    def _heading_line(self, texts: list[str], first: int, last: int) -> bool:
        """True when tokens ``first..last`` are a known heading (with or without a colon)."""
        words = [t.lower() for t in texts[first : last + 1] if t != ":"]
        options = self._headings.get(words[0]) if words else None
        return bool(options) and tuple(words) in (options or ())

    # -- persistence (pipeline.nlp.components.rules.RuleFileComponent) -----------------------------
    def _restore(self, text: str, source: str) -> None:
        self._set_rules(load_section_rules(text, source))

    def _saved_rules(self) -> Any:
        return self.section_rules


def _all_caps(words: list[str]) -> bool:
    letters = [w for w in words if w.isalpha()]
    return bool(letters) and all(w.isupper() for w in letters) and any(len(w) > 1 for w in letters)
