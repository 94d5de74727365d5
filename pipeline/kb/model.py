"""Records of the code knowledge base: codes, index entries, modifiers, search hits.

Code forms: ICD-10-CM codes are kept upper-case and dotted after the category (``S93.401A``),
HCPCS Level II as five characters (``L1906``), CPT as five characters (``99213``, ``0001U``,
``1036F``). :func:`normalize_code` turns what a person types into that form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from pipeline.errors import MalformedCodeError

System = Literal["ICD10CM", "HCPCS", "CPT"]
SYSTEMS: tuple[System, ...] = ("ICD10CM", "HCPCS", "CPT")

# ICD-10-CM: letter, digit (or a letter: FY2026 added category QA0), alphanumeric category; up to
# 4 more characters after the dot.
_ICD_RE = re.compile(r"^([A-Z][0-9A-Z][0-9A-Z])\.?([0-9A-Z]{0,4})$")
_HCPCS_RE = re.compile(r"^[A-V][0-9]{4}$")
_CPT_RE = re.compile(r"^[0-9]{4}[0-9FTUM]$")


@dataclass(slots=True)
class CodeRecord:
    """One code of one system.

    Attributes:
        code: canonical code (see module docstring).
        system: ``ICD10CM``, ``HCPCS`` or ``CPT``.
        title: the code's description (for CPT without a licensed file, the project's own words).
        billable: True when the code may be reported as is (ICD-10-CM: a leaf, with its 7th
            character where one is required; HCPCS: not terminated).
        parent: the code one level up (ICD-10-CM), or None at category level.
        chapter: ICD-10-CM chapter number as a string (``"19"``); HCPCS/CPT: a section label.
        block: ICD-10-CM block (``"S90-S99"``); HCPCS/CPT: a range or category label.
        inclusion_terms: inclusion terms printed under the code.
        includes: "Includes" notes.
        excludes1: Excludes1 notes as printed (``"injury of Achilles tendon (S86.0-)"``).
        excludes2: Excludes2 notes as printed.
        code_first: "Code first" notes.
        use_additional: "Use additional code" notes.
        code_also: "Code also" notes.
        seventh: the 7th characters that apply to this code (inherited from its category),
            character -> meaning; None when the code takes no 7th character.
        placeholder: True when the code was padded with ``X`` to reach the 7th character.
        terminated: HCPCS: the code has a termination date and is not offered.
        synonyms: phrases that signal the code in a note (CPT starter lexicon, curated synonyms).
        meta: system-specific extras (HCPCS dates and BETOS, CPT source...).
    """

    code: str
    system: System
    title: str
    billable: bool
    parent: str | None = None
    chapter: str | None = None
    block: str | None = None
    inclusion_terms: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    excludes1: tuple[str, ...] = ()
    excludes2: tuple[str, ...] = ()
    code_first: tuple[str, ...] = ()
    use_additional: tuple[str, ...] = ()
    code_also: tuple[str, ...] = ()
    seventh: dict[str, str] | None = None
    placeholder: bool = False
    terminated: bool = False
    synonyms: tuple[str, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class IndexEntry:
    """One line of the ICD-10-CM Alphabetic Index (or of its Neoplasm, Drug or External Cause parts).

    Attributes:
        path: main term followed by subterms, e.g. ``("Sprain", "ankle", "calcaneofibular ligament")``.
        code: the code the line gives, canonical form without a trailing dash (``S93.41``), or None.
        incomplete: True when the index printed the code with a trailing ``-``: more characters
            must be chosen from the tabular list.
        nonessential: the non-essential modifiers printed in parentheses after the term.
        see: a "see" cross reference as printed (``"Maltreatment"``), or None.
        see_also: a "see also" cross reference as printed, or None.
        see_path: the see / see-also reference resolved to the path of an existing entry.
        source: ``index``, ``neoplasm``, ``drug`` or ``external``.
        column: for table rows (neoplasm, drug): the column the code came from, e.g.
            ``"malignant primary"`` or ``"poisoning accidental"``.
    """

    path: tuple[str, ...]
    code: str | None
    incomplete: bool = False
    nonessential: tuple[str, ...] = ()
    see: str | None = None
    see_also: str | None = None
    see_path: tuple[str, ...] | None = None
    source: str = "index"
    column: str | None = None


@dataclass(slots=True)
class Modifier:
    """A CPT/HCPCS modifier.

    Attributes:
        code: two characters, e.g. ``RT``, ``25``.
        description: what it means.
        kind: ``anatomic``, ``professional``, ``em``, ``distinct``, ``other``...
        source: ``project`` (our own wording) or ``HCPCS`` (the CMS file).
    """

    code: str
    description: str
    kind: str = "other"
    source: str = "project"


@dataclass(slots=True)
class SearchHit:
    """One result of a text search over the knowledge base.

    Attributes:
        code: canonical code.
        system: its system.
        title: its title.
        score: relevance, higher is better.
        matched: the KB string that matched (index path joined with " > ", title, inclusion term...).
        source: where the match came from: ``index``, ``title``, ``inclusion``, ``synonym``.
        billable: whether the code is billable.
    """

    code: str
    system: System
    title: str
    score: float
    matched: str
    source: str
    billable: bool = True


def normalize_code(text: str, system: System | None = None) -> tuple[System, str]:
    """Parse a code as a person writes it into ``(system, canonical code)``.

    ``S93.401A``, ``s93401a`` and ``S93.401a`` give ``("ICD10CM", "S93.401A")``; ``l1906`` gives
    ``("HCPCS", "L1906")``; ``99213`` gives ``("CPT", "99213")``. A dotted code is always
    ICD-10-CM. Five characters of a letter and four digits without a dot are read as HCPCS
    unless ``system`` says otherwise (``S9340`` is both a HCPCS code and ``S93.40`` undotted);
    the knowledge base's lookup retries the other reading when the first is unknown.

    Args:
        text: the code as typed; surrounding space is ignored.
        system: force one system's reading.

    Returns:
        The system and canonical code.

    Raises:
        MalformedCodeError: the text cannot be a code of the (given) system.
    """
    raw = text.strip().upper().replace(" ", "")
    if not raw:
        raise MalformedCodeError("empty code")
    candidates: list[System] = [system] if system else []
    if not candidates:
        if "." in raw:
            candidates = ["ICD10CM"]
        elif _HCPCS_RE.match(raw):
            candidates = ["HCPCS", "ICD10CM"]
        elif _CPT_RE.match(raw):
            candidates = ["CPT"]
        else:
            candidates = ["ICD10CM"]
    for cand in candidates:
        if cand == "ICD10CM":
            m = _ICD_RE.match(raw.rstrip("-"))
            if m and (raw.count(".") <= 1):
                head, tail = m.groups()
                return "ICD10CM", f"{head}.{tail}" if tail else head
        elif cand == "HCPCS" and _HCPCS_RE.match(raw):
            return "HCPCS", raw
        elif cand == "CPT" and _CPT_RE.match(raw):
            return "CPT", raw
    wanted = f" {system}" if system else ""
    raise MalformedCodeError(f"{text.strip()!r} is not a valid{wanted} code")
