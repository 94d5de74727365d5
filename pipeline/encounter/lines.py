"""A CPT or HCPCS line of the claim: built by the service rules (:mod:`pipeline.encounter.services`)
and the E/M rules (:mod:`pipeline.encounter.em`), ordered and given pointers by the former."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.encounter.diagnoses.state import Rule


@dataclass
class ServiceLine:
    """One CPT or HCPCS line of the claim.

    Attributes:
        code: the code.
        system: ``CPT`` or ``HCPCS``.
        title: its title.
        role: ``procedure``, ``supply`` or ``em``.
        category: the kind of service (``radiology``, ``lab``, ``drug``, ``orthosis``...).
        modifiers: claim modifiers, in claim order.
        pointers: the diagnoses it is billed for.
        units: billing units.
        mentions: supporting mentions.
        spans: other supporting character spans.
        rules: rule decisions.
        rationale: one sentence on why.
        side: ``right``, ``left``, ``bilateral`` or None.
        sites: body-site words of the service.
        text: the sentences that describe it (lower case), for features and pointers.
        start: where it is first described.
    """

    code: str
    system: str
    title: str
    role: str
    category: str = ""
    modifiers: list[str] = field(default_factory=list)
    pointers: list[str] = field(default_factory=list)
    units: int = 1
    mentions: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    rationale: str = ""
    side: str | None = None
    sites: set[str] = field(default_factory=set)
    text: str = ""
    start: int = 0
