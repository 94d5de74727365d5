"""``cs_attributes``: coding attributes of every mention and note-level encounter cues.

For each mention in ``doc.spans["cs_mentions"]`` this sets, from the cue phrases of
``resources/attribute_rules.json`` (strict loader in :mod:`pipeline.nlp.components.attribute_rules`):

- ``cs_laterality`` (right / left / bilateral), ``cs_acuity`` (acute / chronic /
  acute_on_chronic / subacute): the nearest cue inside the mention or within a few tokens of
  it in the same sentence; windows never cross a barrier (";", "but"...). Exact one-letter cues
  ("R ankle") count only right before the mention, and not after a number ("2 L").
- ``cs_episode`` (initial / subsequent / sequela): a cue in the mention's sentence, else the
  note-level value, read from the opening sentences and the reason-for-visit, HPI and
  assessment sections only ("Follow-up visit." at the top of the note; "during follow-up" deep
  in a case report's story is not the encounter). Future plans ("follow up in 2 weeks") are
  ignored.
- ``cs_site``: the body-site words inside the mention, else those next to it (canonical names).
- ``cs_views``: the number of imaging views for procedure mentions in an imaging sentence
  ("3 views", "2V", "AP and lateral" = 2), also read from the next sentence when that one has no
  procedure of its own; a complete series sets ``cs_attributes["views_complete"]``.
- ``cs_attributes``: fracture details (``displacement``, ``open_closed``, ``healing``).
- ``cs_section`` (the first token's section; mentions do not exist yet when ``cs_sections`` runs),
  and the assertions that sections imply: everything under a family-history heading is
  ``is_family``, under past medical / surgical history ``is_historical`` unless negated.

``doc._.cs_encounter`` gets the note-level cues: ``new_patient`` (True / False / None),
``total_minutes``, ``settings`` (list), ``imaging_interpretation_only`` and the note-level value
of every cue group that has ``document_values`` (``episode``, ``healing``).

All phrases go into two spaCy ``PhraseMatcher`` objects (lower case and exact) and all regular
expressions are compiled when the rules are loaded; a call only runs the matchers once.

(No ``from __future__ import annotations`` here: spaCy resolves the factory's annotations.)
"""

import logging
import re
import time
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy
from spacy.attrs import LOWER
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from pipeline.nlp.components.attribute_rules import ATTRIBUTE_RULES_FILE, AttributeRules, CueGroup, load_attribute_rules
from pipeline.nlp.components.rules import RuleFileComponent
from pipeline.nlp.extensions import MENTIONS, record_timing, register_extensions

logger = logging.getLogger(__name__)

_ENCOUNTER = "@encounter"


@dataclass(frozen=True, slots=True)
class _Cue:
    start: int
    end: int
    value: str | None  # None: an ignore phrase
    exact: bool  # matched case-sensitively


@dataclass(frozen=True, slots=True)
class _Sentence:
    start: int
    end: int
    start_char: int
    end_char: int


@Language.factory(
    "cs_attributes",
    requires=["token.is_sent_start", "doc.spans", "token._.cs_section"],
    assigns=[
        "span._.cs_laterality",
        "span._.cs_episode",
        "span._.cs_acuity",
        "span._.cs_site",
        "span._.cs_views",
        "span._.cs_attributes",
        "span._.cs_section",
        "doc._.cs_encounter",
    ],
    default_config={},
)
def make_attributes(nlp: Language, name: str) -> "MentionAttributes":
    """Create the ``cs_attributes`` component (see :class:`MentionAttributes`).

    Args:
        nlp: the pipeline.
        name: component name.

    Returns:
        The component.
    """
    return MentionAttributes(nlp, name)


class MentionAttributes(RuleFileComponent):
    """Sets laterality, episode, acuity, site, views and fracture details of mentions.

    Args:
        nlp: the pipeline (its vocabulary and tokenizer build the phrase matchers).
        name: component name.
    """

    rules_file = ATTRIBUTE_RULES_FILE

    def __init__(self, nlp: Language, name: str = "cs_attributes"):
        register_extensions()
        self.name = name
        self.rules: AttributeRules | None = None
        self._nlp = nlp
        self._lower: PhraseMatcher | None = None
        self._exact: PhraseMatcher | None = None
        self._keys: dict[int, tuple[str, str | None, bool]] = {}
        self._views_number: re.Pattern[str] | None = None
        self._views_names: re.Pattern[str] | None = None
        self._view_name: re.Pattern[str] | None = None
        self._single_view: re.Pattern[str] | None = None
        self._imaging: re.Pattern[str] | None = None
        self._complete: re.Pattern[str] | None = None
        self._minutes: tuple[re.Pattern[str], ...] = ()
        self._barrier_hashes = numpy.zeros(0, dtype="uint64")

    # -- building ------------------------------------------------------------------------------
    def set_rules(self, rules: AttributeRules) -> None:
        """Compile validated rules into phrase matchers and regular expressions.

        Args:
            rules: the attribute rules.
        """
        vocab = self._nlp.vocab
        make_doc = self._nlp.make_doc
        lower = PhraseMatcher(vocab, attr="LOWER")
        exact = PhraseMatcher(vocab, attr="ORTH")
        keys: dict[int, tuple[str, str | None, bool]] = {}

        def add(
            matcher: PhraseMatcher,
            group: str,
            value: str | None,
            phrases: Iterable[str],
            is_exact: bool,
        ) -> None:
            key = f"{group}|{value or ''}|{'exact' if is_exact else 'lower'}"
            docs = [make_doc(p if is_exact else p.lower()) for p in phrases]
            matcher.add(key, docs)
            keys[vocab.strings[key]] = (group, value, is_exact)

        for group in rules.groups:
            for value, phrases in group.values.items():
                add(lower, group.name, value, phrases, False)
            for value, phrases in group.case_sensitive.items():
                add(exact, group.name, value, phrases, True)
            if group.ignore:
                add(lower, group.name, None, group.ignore, False)
        encounter = rules.encounter
        add(lower, _ENCOUNTER, "new_patient", encounter.new_patient, False)
        add(lower, _ENCOUNTER, "established_patient", encounter.established_patient, False)
        add(lower, _ENCOUNTER, "interpretation_only", encounter.interpretation_only, False)
        for setting, phrases in encounter.settings.items():
            add(lower, _ENCOUNTER, f"setting:{setting}", phrases, False)

        views = rules.views
        numbers = "|".join(re.escape(w) for w in sorted(views.numbers, key=len, reverse=True))
        view_words = _alternation(views.view_words)
        names = _alternation(views.view_names)
        connectors = _alternation(views.connectors)
        self._views_number = re.compile(
            rf"(?<![\w.])(\d{{1,2}}|{numbers})\s*-?\s*(?:{view_words})(?![\w-])", re.IGNORECASE
        )
        self._views_names = re.compile(
            rf"(?<![\w-])(?:{names})(?:\s*(?:{connectors})\s*(?:{names}))+(?![\w-])", re.IGNORECASE
        )
        self._view_name = re.compile(rf"(?<![\w-])(?:{names})(?![\w-])", re.IGNORECASE)
        self._single_view = re.compile(rf"(?<![\w-])(?:{names})\s+(?:{view_words})(?![\w-])", re.IGNORECASE)
        self._imaging = re.compile(rf"(?<![\w-])(?:{_alternation(views.imaging_words)})(?![\w-])", re.IGNORECASE)
        self._complete = re.compile(rf"(?<![\w-])(?:{_alternation(views.complete_words)})(?![\w-])", re.IGNORECASE)
        self._minutes = tuple(re.compile(p) for p in encounter.minutes_patterns)
        self._lower, self._exact, self._keys = lower, exact, keys
        self._barrier_hashes = numpy.array([vocab.strings.add(b) for b in rules.barriers], dtype="uint64")
        self.rules = rules
        logger.debug("cs_attributes: %d cue groups, %d phrase keys", len(rules.groups), len(keys))

    # -- annotating ----------------------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        """Set the attributes of every mention and ``doc._.cs_encounter``."""
        if self.rules is None or self._lower is None or self._exact is None:
            raise ValueError("cs_attributes has no rules: initialize the pipeline or load it from disk")
        started = time.perf_counter()
        rules = self.rules
        note = doc.text  # built from the tokens at every access: read it once
        cues, encounter_hits = self._find_cues(doc)
        sentences = _sentences(doc)
        sentence_starts = [s.start for s in sentences]
        lowers = doc.to_array([LOWER]).reshape(-1)
        barrier = [0, *numpy.cumsum(numpy.isin(lowers, self._barrier_hashes)).tolist()]
        encounter = self._encounter(note, encounter_hits)
        document_values: dict[str, str | None] = {}
        for group in rules.groups:
            if group.document_values:
                last = min(group.document_sentences, len(sentences)) - 1
                opening = sentences[last].end if last >= 0 else 0
                found = [
                    c
                    for c in cues.get(group.name, ())
                    if not (group.document_sentences or group.document_sections)
                    or c.start < opening
                    or doc[c.start]._.cs_section in group.document_sections
                ]
                document_values[group.name] = _document_value(group, found)
                encounter[group.name] = document_values[group.name]
        doc._.cs_encounter = encounter
        mentions = list(doc.spans[MENTIONS]) if MENTIONS in doc.spans else []
        exts = [span._ for span in mentions]  # each span._ access builds a new object
        kinds = [ext.cs_kind for ext in exts]
        token_sections = [doc[span.start]._.cs_section for span in mentions]
        where = [bisect_right(sentence_starts, span.start) - 1 for span in mentions]
        procedure_sentences = {i for i, kind in zip(where, kinds, strict=True) if kind in rules.views.kinds}
        whole = _Sentence(0, len(doc), 0, len(note))
        for span, ext, kind, section, index in zip(mentions, exts, kinds, token_sections, where, strict=True):
            ext.cs_section = section
            sentence = sentences[index] if index >= 0 else whole
            words: set[str] | None = None
            attributes = dict(ext.cs_attributes or {})
            for group in rules.groups:
                if group.kinds is not None and kind not in group.kinds:
                    continue
                if group.mention_words is not None:
                    if words is None:
                        words = {t.lower_ for t in span}
                    if not (words & group.mention_words):
                        continue
                value = _pick(group, cues.get(group.name, ()), span, sentence, barrier)
                if value is None and group.name in document_values:
                    value = document_values[group.name]
                if group.target == "cs_attributes":
                    if value is not None:
                        attributes[group.name] = value
                else:
                    setattr(ext, group.target, value)
            if kind in rules.views.kinds:
                count, complete = self._views(note, span, sentences, index, procedure_sentences)
                ext.cs_views = count
                if complete:
                    attributes["views_complete"] = True
            ext.cs_attributes = attributes
            self._section_assertions(ext, section)
        record_timing(doc, self.name, started)
        return doc

    def _find_cues(self, doc: Doc) -> tuple[dict[str, list[_Cue]], dict[str, list[tuple[int, int]]]]:
        """Run both phrase matchers: cues per group (overlaps resolved) and encounter hits."""
        assert self._lower is not None and self._exact is not None
        raw: dict[str, list[_Cue]] = {}
        encounter: dict[str, list[tuple[int, int]]] = {}
        for match_id, start, end in [*self._lower(doc), *self._exact(doc)]:
            group, value, exact = self._keys[match_id]
            if group == _ENCOUNTER:
                encounter.setdefault(value or "", []).append((start, end))
                continue
            if exact and end - start == 1 and len(doc[start].text) == 1 and start > 0 and doc[start - 1].like_num:
                continue  # a unit after a number ("2 L"), not a side
            raw.setdefault(group, []).append(_Cue(start, end, value, exact))
        cues: dict[str, list[_Cue]] = {}
        for group, found in raw.items():
            # Longest first, then earliest: an ignore phrase or "acute on chronic"
            # hides what it covers.
            found.sort(key=lambda c: (-(c.end - c.start), c.start))
            taken: list[_Cue] = []
            for cue in found:
                if all(cue.end <= t.start or cue.start >= t.end for t in taken):
                    taken.append(cue)
            cues[group] = sorted((c for c in taken if c.value is not None), key=lambda c: c.start)
        return cues, encounter

    def _encounter(self, note: str, hits: dict[str, list[tuple[int, int]]]) -> dict[str, Any]:
        """Note-level cues for evaluation and management coding and imaging components."""
        new = bool(hits.get("new_patient"))
        established = bool(hits.get("established_patient"))
        settings = sorted(
            (min(s for s, _ in spans), key.split(":", 1)[1])
            for key, spans in hits.items()
            if key.startswith("setting:")
        )
        minutes = None
        for pattern in self._minutes:
            match = pattern.search(note)
            if match:
                value = int(match.group(1))
                if 0 < value <= 600:
                    minutes = value
                    break
        return {
            "new_patient": True if new and not established else False if established and not new else None,
            "total_minutes": minutes,
            "settings": [name for _, name in settings],
            "imaging_interpretation_only": bool(hits.get("interpretation_only")),
        }

    def _views(
        self,
        note: str,
        span: Span,
        sentences: list["_Sentence"],
        index: int,
        procedure_sentences: set[int],
    ) -> tuple[int | None, bool]:
        """Number of views stated for an imaging procedure; whether a complete series is said."""
        assert self._imaging is not None and self._complete is not None
        if index < 0:
            return None, False
        sentence = sentences[index]
        text = note[sentence.start_char : sentence.end_char]
        if not (self._imaging.search(span.text) or self._imaging.search(text)):
            return None, False
        count = self._count_views(text)
        complete = bool(self._complete.search(text))
        if count is None and index + 1 < len(sentences) and index + 1 not in procedure_sentences:
            following = sentences[index + 1]
            next_text = note[following.start_char : following.end_char]
            count = self._count_views(next_text)
            complete = complete or bool(self._complete.search(next_text))
        return count, complete

    def _count_views(self, text: str) -> int | None:
        assert self.rules is not None
        assert self._views_number and self._views_names and self._view_name and self._single_view
        views = self.rules.views
        match = self._views_number.search(text)
        if match:
            word = match.group(1).lower()
            number = int(word) if word.isdigit() else views.numbers.get(word)
            if number is not None and 0 < number <= views.max_views:
                return number
        match = self._views_names.search(text)
        if match:
            return len(self._view_name.findall(match.group(0)))
        if self._single_view.search(text):
            return 1
        return None

    def _section_assertions(self, ext: Any, section: str | None) -> None:
        """Set the assertions that the mention's section implies (``ext`` is ``span._``)."""
        assert self.rules is not None
        if section is None:
            return
        for rule in self.rules.section_assertions:
            if rule.section == section and not any(getattr(ext, attr) for attr in rule.unless):
                setattr(ext, rule.attribute, True)

    # -- persistence (pipeline.nlp.components.rules.RuleFileComponent) -----------------------------
    def _restore(self, text: str, source: str) -> None:
        self.set_rules(load_attribute_rules(text, source))


def _alternation(words: Iterable[str]) -> str:
    """A regex alternation of literal words, longest first, spaces matching any whitespace."""
    parts = sorted({w.lower() for w in words}, key=len, reverse=True)
    return "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in parts)


def _sentences(doc: Doc) -> list[_Sentence]:
    if not len(doc):
        return []
    if not doc.has_annotation("SENT_START"):
        return [_Sentence(0, len(doc), 0, len(doc.text))]
    return [_Sentence(s.start, s.end, s.start_char, s.end_char) for s in doc.sents]


def _pick(group: CueGroup, cues: Sequence[_Cue], span: Span, sentence: _Sentence, barrier: list[int]) -> Any:
    """The group's value for one mention, or None (a list for ``pick: all``)."""
    candidates: list[tuple[int, int, _Cue]] = []  # (distance, side, cue); side 0 inside, 1 before, 2 after
    for cue in cues:
        if cue.end <= sentence.start:
            continue
        if cue.start >= sentence.end:
            break
        if cue.start < span.end and cue.end > span.start:
            candidates.append((-1, 0, cue))
            continue
        before = cue.end <= span.start
        gap = span.start - cue.end if before else cue.start - span.end
        if group.scope == "window":
            window = group.case_sensitive_window if cue.exact else group.window
            if gap > (window[0] if before else window[1]):
                continue
            blocked = barrier[span.start] - barrier[cue.end] if before else barrier[cue.start] - barrier[span.end]
            if blocked:
                continue
        candidates.append((gap, 1 if before else 2, cue))
    if group.pick == "all":
        # Cues inside the mention ("ankle sprain") win over its neighbours ("and knee pain").
        inside = [c for c in candidates if c[1] == 0]
        seen: list[str] = []
        for _, _, cue in sorted(inside or candidates, key=lambda c: c[2].start):
            if cue.value is not None and cue.value not in seen:
                seen.append(cue.value)
        return seen
    if not candidates:
        return None
    if group.pick == "priority":
        order = {v: i for i, v in enumerate(group.priority)}
        return min(candidates, key=lambda c: (order.get(c[2].value or "", len(order)), c[0], c[1]))[2].value
    return min(candidates, key=lambda c: (c[0], c[1], c[2].start))[2].value


def _document_value(group: CueGroup, cues: Sequence[_Cue]) -> str | None:
    """The note-level value of a group: the best-ranked (else first) cue in document_values."""
    allowed = [c.value for c in cues if c.value in group.document_values]
    if not allowed:
        return None
    if group.priority:
        order = {v: i for i, v in enumerate(group.priority)}
        return min(allowed, key=lambda v: order.get(v or "", len(order)))
    return allowed[0]
