"""What the diagnosis stages work on: the codes considered for one note, their rule decisions,
physician queries, the mentions left out, and the result handed to the rest of the encounter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from spacy.tokens import Doc

from pipeline.encounter.reading import Assertions, NoteView, Statement


@dataclass
class Rule:
    """A rule decision before it becomes a :class:`~pipeline.types.RuleDecision`."""

    id: str
    message: str


@dataclass
class DxCode:
    """One diagnosis code the rules considered.

    Attributes:
        code: the ICD-10-CM code.
        origin: where it came from: ``statement``, ``history``, ``family``, ``chronic``,
            ``external``, ``companion``, ``redirect`` or ``combination``.
        support: 3 for a final diagnostic statement, 2 for a direct mention elsewhere, 1 for a
            code derived by a rule.
        order: sequencing key (statement order, position).
        mentions: indices of the supporting mentions.
        spans: supporting character spans that are not mentions (companion evidence...).
        rules: rule decisions.
        uncertain: documented as uncertain (kept only in the inpatient setting).
        kind: the kind of the mention it came from.
        statement: the statement it came from.
        dropped: why it is not in the code set (None while it is).
    """

    code: str
    origin: str
    support: int
    order: tuple[int, int]
    mentions: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    uncertain: bool = False
    kind: str = "diagnosis"
    statement: Statement | None = None
    dropped: Rule | None = None
    detail: tuple[int, int] = (0, 0)
    explained: frozenset[str] = frozenset()
    companion_of: str | None = None


@dataclass
class Query:
    """A condition the provider must clarify before it can be coded."""

    code: str
    question: str
    spans: list[tuple[int, int]]
    mentions: list[int]
    rule: Rule


@dataclass
class Left:
    """A mention left out of coding."""

    mention: int
    reason: str
    codes: list[str]


@dataclass
class DxResult:
    """The diagnosis part of one encounter.

    Attributes:
        codes: the claim's diagnosis codes, in claim order (first-listed or principal first).
        dropped: codes the rules considered and left out (with ``dropped`` set).
        queries: physician queries.
        left_out: mentions not coded (negated, hypothetical, uncertain...).
    """

    codes: list[DxCode]
    dropped: list[DxCode]
    queries: list[Query]
    left_out: list[Left]


@dataclass
class CodedMention:
    """A mention with the codes its clause fully states, best first (see :meth:`DxContext.mention`)."""

    index: int
    span: Any
    tokens: frozenset[int]
    cands: list[tuple[Any, str | None, int]]
    side: str | None
    matches: list[Any] = field(default_factory=list)
    code: str = ""
    explained: frozenset[str] = frozenset()
    titled: frozenset[str] = frozenset()


class NoteState:
    """What the diagnosis stages share while they code one note: the codes considered, queries, mentions left out."""

    def __init__(
        self,
        doc: Doc,
        view: NoteView,
        asserts: Assertions,
        mentions: Sequence[Any],
        setting: str,
        probs: dict[str, float],
    ) -> None:
        self.doc = doc
        self.view = view
        self.asserts = asserts
        self.mentions = mentions
        self.setting = setting
        self.probs = probs
        self.codes: list[DxCode] = []
        self.queries: list[Query] = []
        self.left: list[Left] = []
        self.uncertain_dropped = False
        self.family_candidates: list[tuple[int, str, CodedMention]] = []
        self.history_candidates: list[tuple[int, str, CodedMention]] = []
        self.chronic_candidates: list[tuple[int, str, CodedMention]] = []
        self.mention_cache: dict[tuple[int, int, int], CodedMention | None] = {}

    def add(self, code: DxCode) -> None:
        for c in self.codes:
            if (
                c.dropped is None
                and c.code == code.code
                and c.statement is not None
                and c.statement is code.statement
                and c.origin == code.origin
            ):
                c.mentions.extend(i for i in code.mentions if i not in c.mentions)
                c.rules.extend(code.rules)
                return
        self.codes.append(code)

    def active(self) -> list[DxCode]:
        return [c for c in self.codes if c.dropped is None]

    def has(self, code: str) -> bool:
        return any(c.code == code for c in self.active())
