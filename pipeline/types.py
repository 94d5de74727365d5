"""Result types of the one path: note text -> suggestions with evidence and an encounter code set.

Everything :meth:`pipeline.suggest.Suggester.suggest` returns is declared here, so that the layers
that build a result (``encounter``), return it (``suggest``), serialise it (``service``, ``cli``)
or score it (``evaluate``) share one definition without importing one another. This module
imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["suggested", "consider", "query"]
Setting = Literal["outpatient", "inpatient"]
SETTINGS: tuple[str, ...] = ("outpatient", "inpatient")


@dataclass(slots=True)
class Patient:
    """What the request says about the patient (used by age/sex edits and E/M new vs established).

    Attributes:
        age: age in years, or None.
        sex: ``female``, ``male`` or ``unknown``.
    """

    age: int | None = None
    sex: str = "unknown"


@dataclass(slots=True)
class Evidence:
    """A span of the note that supports a code.

    Attributes:
        start: character offset, 0-based.
        end: character offset, exclusive.
        text: ``note[start:end]``.
        section: the note section the span sits in (``assessment``, ``hpi``...), or None.
        assertions: ``negated``, ``historical``, ``family``, ``hypothetical``, ``uncertain``.
    """

    start: int
    end: int
    text: str
    section: str | None
    assertions: dict[str, bool]


@dataclass(slots=True)
class RuleDecision:
    """A coding rule applied to a suggestion (id such as ``icd.7th.initial``, and what it did)."""

    id: str
    message: str


@dataclass(slots=True)
class Suggestion:
    """One suggested code.

    Attributes:
        code: canonical code.
        system: ``ICD10CM``, ``CPT`` or ``HCPCS``.
        description: the code's title.
        score: calibrated probability that a coder assigns it.
        rank: 1-based position in the ranked list.
        status: ``suggested`` (above the model's threshold), ``consider`` (below it) or
            ``query`` (needs a physician query before it can be billed).
        evidence: the spans that support it.
        rationale: one readable sentence on why.
        modifiers: CPT/HCPCS modifiers (``RT``, ``25``, ``26``...).
        rules: coding rules applied to it.
        query: for ``status == "query"``, the question to ask the physician.
        pointers: for procedure and supply lines, the ICD-10-CM codes that support them.
    """

    code: str
    system: str
    description: str
    score: float
    rank: int
    status: Status
    evidence: list[Evidence] = field(default_factory=list)
    rationale: str = ""
    modifiers: list[str] = field(default_factory=list)
    rules: list[RuleDecision] = field(default_factory=list)
    query: str | None = None
    pointers: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ExcludedMention:
    """A mention left out of coding, and why (``negated``, ``family``, ``hypothetical``...)."""

    text: str
    start: int
    end: int
    reason: str
    codes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CodeSetLine:
    """One line of the final, ordered encounter code set.

    Attributes:
        sequence: 1-based order on the claim.
        code: canonical code.
        system: its system.
        description: its title.
        role: ``principal`` / ``first-listed`` / ``secondary`` / ``external-cause`` for diagnoses,
            ``procedure`` / ``supply`` / ``em`` for service lines.
        modifiers: modifiers on a service line.
        pointers: diagnosis codes a service line points to.
    """

    sequence: int
    code: str
    system: str
    description: str
    role: str
    modifiers: list[str] = field(default_factory=list)
    pointers: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SuggestionResult:
    """Everything :meth:`Suggester.suggest` returns for one note.

    Attributes:
        suggestions: ranked suggestions.
        excluded: mentions deliberately not coded.
        code_set: the final ordered code set for the encounter.
        model_version: name and version of the model that produced it.
        code_set_versions: versions of the code sets used.
        setting: ``outpatient`` or ``inpatient``.
        elapsed_ms: time spent in :meth:`Suggester.suggest`.
        note_length: characters in the note.
        extra: further encounter-level facts (E/M level basis...).
    """

    suggestions: list[Suggestion]
    excluded: list[ExcludedMention]
    code_set: list[CodeSetLine]
    model_version: str
    code_set_versions: dict[str, str]
    setting: str
    elapsed_ms: float
    note_length: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form (the CLI's ``--json`` document)."""
        return asdict(self)
