"""The code knowledge base: ICD-10-CM (tabular + Alphabetic Index), HCPCS Level II, CPT, modifiers.

:class:`KnowledgeBase` is the one API the rest of the project uses to look codes up, walk the
ICD-10-CM hierarchy, complete 7th characters, check Excludes1 pairs and search code text.

It is built once from the reference data (:func:`pipeline.kb.build.build_knowledge_base`), saved as a small artefact
folder of gzip'd JSON plus ``manifest.json`` (:meth:`KnowledgeBase.save`, committed as
``models/kb``) and loaded from there (:meth:`KnowledgeBase.load`). The artefact stores the parsed
tabular nodes, not the ~51,000 generated 7th-character codes: those are regenerated at load.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.errors import (
    ArtefactError,
    DataFileError,
    InvalidSeventhCharacterError,
    MalformedCodeError,
    UnknownCodeError,
)
from pipeline.kb.model import (
    SYSTEMS,
    CodeRecord,
    IndexEntry,
    Modifier,
    SearchHit,
    System,
    normalize_code,
)
from pipeline.kb.search import SearchIndex
from pipeline.kb.sources.icd10cm import Tabular, TabularNode, build_records, place_seventh
from pipeline.kb.sources.index import AlphabeticIndex
from pipeline.manifest import Manifest, verify_manifest, write_manifest

logger = logging.getLogger(__name__)

KB_KIND = "kb"
KB_NAME = "codesuggest-kb"
KB_FORMAT_VERSION = "1.0"
RECORDS_SCHEMA = "codesuggest.kb.records/1"
MODIFIERS_SCHEMA = "codesuggest.kb.modifiers/1"

TABULAR_FILE = "icd10cm_tabular.json.gz"
INDEX_FILE = "icd10cm_index.json.gz"
HCPCS_FILE = "hcpcs.json.gz"
CPT_FILE = "cpt.json.gz"
MODIFIERS_FILE = "modifiers.json.gz"

_RECORD_FIELDS = (
    "code",
    "system",
    "title",
    "billable",
    "parent",
    "chapter",
    "block",
    "inclusion_terms",
    "includes",
    "excludes1",
    "excludes2",
    "code_first",
    "use_additional",
    "code_also",
    "seventh",
    "placeholder",
    "terminated",
    "synonyms",
    "meta",
)
_TUPLE_FIELDS = (
    "inclusion_terms",
    "includes",
    "excludes1",
    "excludes2",
    "code_first",
    "use_additional",
    "code_also",
    "synonyms",
)
# Code references inside a note: "(E08.-)", "(M25.57-)", "(A00-A09)", "(S32.1--S32.9 with ...)".
_NOTE_PARENS = re.compile(r"\(([^()]*)\)")
# A letter, a digit (or the "A" of FY2026's QA0), an alphanumeric; ".", up to 4 more characters.
_CODE_PATTERN = r"[A-Z](?:[0-9]|A(?=[0-9]))[0-9A-Z](?:\.[0-9A-Z]{0,4})?"
_NOTE_CODE = re.compile(rf"\b(?P<lo>{_CODE_PATTERN})(?:-{{1,2}}(?P<hi>{_CODE_PATTERN})|-)?")


@dataclass(frozen=True, slots=True)
class NoteReference:
    """The codes one Excludes note points at, as undotted inclusive bounds.

    Attributes:
        note: the note as printed.
        owner: the code (or block / ``chapter:N``) the note is printed under.
        ranges: ``(low, high)`` undotted; a code ``c`` is covered when
            ``c[:len(low)] >= low`` and ``c[:len(high)] <= high`` (a prefix ``p`` is ``(p, p)``).
    """

    note: str
    owner: str
    ranges: tuple[tuple[str, str], ...]

    def covers(self, flat: str) -> bool:
        """Tell whether a code falls in one of the ranges.

        Args:
            flat: an undotted code, e.g. ``"E1165"``.

        Returns:
            True when covered.
        """
        return any(flat[: len(lo)] >= lo and flat[: len(hi)] <= hi for lo, hi in self.ranges)


def parse_note_references(note: str, owner: str) -> NoteReference | None:
    """Parse the code references of an Excludes note, or None when it names no code.

    Args:
        note: e.g. ``"diabetes mellitus due to underlying condition (E08.-)"``.
        owner: the code the note is printed under.

    Returns:
        The references, leaving out any that cover the owner itself (a note never excludes its
        own family).
    """
    ranges: list[tuple[str, str]] = []
    own = owner.replace(".", "")
    for inside in _NOTE_PARENS.findall(note):
        for match in _NOTE_CODE.finditer(inside):
            lo = match.group("lo").replace(".", "")
            hi = (match.group("hi") or match.group("lo")).replace(".", "")
            if own[: len(lo)] >= lo and own[: len(hi)] <= hi and not owner.startswith("chapter:"):
                continue
            ranges.append((lo, hi))
    return NoteReference(note, owner, tuple(ranges)) if ranges else None


def record_to_dict(record: CodeRecord) -> dict[str, Any]:
    """Return the JSON form of a record, leaving out fields at their default value.

    Args:
        record: the record.

    Returns:
        A dict for ``json.dumps``.
    """
    out: dict[str, Any] = {
        "code": record.code,
        "system": record.system,
        "title": record.title,
        "billable": record.billable,
    }
    for name in _RECORD_FIELDS[4:]:
        value = getattr(record, name)
        if value:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def record_from_dict(data: Any, where: str) -> CodeRecord:
    """Rebuild a record from :func:`record_to_dict` output.

    Args:
        data: the parsed JSON object.
        where: file and position, for error messages.

    Returns:
        The record.

    Raises:
        DataFileError: unknown keys or bad values, naming ``where``.
    """
    if not isinstance(data, dict):
        raise DataFileError(f"{where}: a record must be an object")
    unknown = set(data) - set(_RECORD_FIELDS)
    if unknown:
        raise DataFileError(f"{where}: unknown keys {sorted(unknown)}")
    if data.get("system") not in SYSTEMS or not isinstance(data.get("code"), str):
        raise DataFileError(f"{where}: bad code or system")
    values = dict(data)
    for name in _TUPLE_FIELDS:
        if name in values:
            if not isinstance(values[name], list):
                raise DataFileError(f"{where}: {name} must be a list")
            values[name] = tuple(values[name])
    try:
        return CodeRecord(**values)
    except TypeError as exc:
        raise DataFileError(f"{where}: {exc}") from exc


class KnowledgeBase:
    """All code sets with lookup, hierarchy, 7th characters, Excludes checks and search.

    Build it with :meth:`build` or read a saved one with :meth:`load`; the constructor is for those
    two. Records returned by the methods are shared: do not modify them.

    Attributes:
        versions: code-set versions, e.g. ``{"ICD10CM": "FY2026 (April 1, 2026 update)",
            "ICD10CM_INDEX": "FY2025", "HCPCS": "2020", "CPT": "starter 2026.2"}``.
        modifiers: CPT/HCPCS modifier code -> modifier.
        index_entries: every Alphabetic Index entry (index, external, neoplasm, drug).
    """

    def __init__(
        self,
        tabular: Tabular,
        index: AlphabeticIndex | None,
        hcpcs: list[CodeRecord],
        cpt: list[CodeRecord],
        modifiers: dict[str, Modifier],
        versions: dict[str, str],
        sources: list[dict[str, Any]] | None = None,
    ) -> None:
        self.versions = dict(versions)
        self.modifiers = dict(modifiers)
        self.sources = list(sources or [])
        self._tabular = tabular
        self._index = index
        icd, self._headers = build_records(tabular)
        self._records: dict[System, list[CodeRecord]] = {
            "ICD10CM": icd,
            "HCPCS": list(hcpcs),
            "CPT": list(cpt),
        }
        self._by_code: dict[str, CodeRecord] = {}
        for system in SYSTEMS:
            for rec in self._records[system]:
                if rec.code in self._by_code:
                    raise DataFileError(f"code {rec.code} appears twice ({self._by_code[rec.code].system}, {system})")
                self._by_code[rec.code] = rec
        self._children: dict[str, list[CodeRecord]] = {}
        for rec in icd:
            if rec.parent is not None:
                self._children.setdefault(rec.parent, []).append(rec)
        self.index_entries: list[IndexEntry] = index.entries() if index is not None else []
        self._entries_by_code: dict[str, list[int]] = {}
        for i, entry in enumerate(self.index_entries):
            if entry.code is not None:
                self._entries_by_code.setdefault(entry.code, []).append(i)
        self._excludes1 = self._parse_notes("excludes1")
        self._excludes2 = self._parse_notes("excludes2")
        self._search: SearchIndex | None = None
        self.search_build_seconds: float | None = None

    # -- building, saving, loading ----------------------------------------------------------
    def save(self, folder: Path) -> Manifest:
        """Write the artefact folder: gzip'd JSON files and ``manifest.json``.

        Args:
            folder: the artefact folder (created if needed; files of a previous KB are replaced).

        Returns:
            The manifest as written.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in (TABULAR_FILE, INDEX_FILE, HCPCS_FILE, CPT_FILE, MODIFIERS_FILE):
            (folder / name).unlink(missing_ok=True)
        _write_gz_json(folder / TABULAR_FILE, self._tabular.to_dict())
        if self._index is not None:
            _write_gz_json(folder / INDEX_FILE, self._index.to_dict())
        for system, name in (("HCPCS", HCPCS_FILE), ("CPT", CPT_FILE)):
            records = self._records[system]  # type: ignore[index]
            _write_gz_json(
                folder / name,
                {
                    "schema": RECORDS_SCHEMA,
                    "system": system,
                    "records": [record_to_dict(r) for r in records],
                },
            )
        _write_gz_json(
            folder / MODIFIERS_FILE,
            {
                "schema": MODIFIERS_SCHEMA,
                "modifiers": [
                    {
                        "code": m.code,
                        "description": m.description,
                        "kind": m.kind,
                        "source": m.source,
                    }
                    for m in self.modifiers.values()
                ],
            },
        )
        manifest = Manifest(
            name=KB_NAME,
            version=KB_FORMAT_VERSION,
            kind=KB_KIND,
            code_sets=dict(self.versions),
            training_data=list(self.sources),
            params={"cpt_source": "licensed" if self.versions.get("CPT", "").startswith("licensed") else "starter"},
            libraries=_library_versions(),
            extra={"counts": self.stats()},
        )
        written = write_manifest(folder, manifest)
        logger.info("saved knowledge base to %s (%d files)", folder, len(written.files))
        return written

    @classmethod
    def load(cls, folder: Path) -> KnowledgeBase:
        """Read a saved knowledge base after checking its manifest.

        Args:
            folder: the artefact folder written by :meth:`save`.

        Returns:
            The knowledge base.

        Raises:
            ArtefactError: missing folder or manifest, a file changed since it was written, or a
                file that does not hold what it should.
        """
        folder = Path(folder)
        if not (folder / "manifest.json").is_file():
            raise ArtefactError(f"{folder}: no knowledge base here; build it with `make kb` or `codesuggest kb build`")
        started = time.perf_counter()
        manifest = verify_manifest(folder, kind=KB_KIND)
        # About 400,000 small acyclic objects are created below; the cyclic garbage collector
        # would scan them again and again for nothing (it more than doubles the load time).
        with _gc_paused():
            kb = cls._load_files(folder, manifest)
        logger.info("loaded knowledge base %s in %.2f s", folder, time.perf_counter() - started)
        return kb

    @classmethod
    def _load_files(cls, folder: Path, manifest: Manifest) -> KnowledgeBase:
        try:
            tabular = Tabular.from_dict(_read_gz_json(folder / TABULAR_FILE), TABULAR_FILE)
            index = None
            if (folder / INDEX_FILE).is_file():
                index = AlphabeticIndex.from_dict(_read_gz_json(folder / INDEX_FILE), INDEX_FILE)
            systems: dict[str, list[CodeRecord]] = {}
            for system, name in (("HCPCS", HCPCS_FILE), ("CPT", CPT_FILE)):
                data = _read_gz_json(folder / name)
                if not isinstance(data, dict) or data.get("schema") != RECORDS_SCHEMA or data.get("system") != system:
                    raise DataFileError(f"{name}: expected schema {RECORDS_SCHEMA!r} for {system}")
                systems[system] = [
                    record_from_dict(r, f"{name}: records[{i}]") for i, r in enumerate(data.get("records", []))
                ]
            data = _read_gz_json(folder / MODIFIERS_FILE)
            if not isinstance(data, dict) or data.get("schema") != MODIFIERS_SCHEMA:
                raise DataFileError(f"{MODIFIERS_FILE}: expected schema {MODIFIERS_SCHEMA!r}")
            modifiers: dict[str, Modifier] = {}
            for i, item in enumerate(data.get("modifiers", [])):
                try:
                    modifiers[item["code"]] = Modifier(**item)
                except (TypeError, KeyError) as exc:
                    raise DataFileError(f"{MODIFIERS_FILE}: modifiers[{i}]: {exc}") from exc
            kb = cls(
                tabular,
                index,
                systems["HCPCS"],
                systems["CPT"],
                modifiers,
                manifest.code_sets,
                manifest.training_data,
            )
        except DataFileError as exc:
            raise ArtefactError(f"{folder}: {exc}") from exc
        return kb

    # -- lookup ----------------------------------------------------------------------------------
    def get(self, code: str, system: System | None = None) -> CodeRecord | None:
        """Return the record of a code in any typed form (``"s93401a"``), or None.

        Args:
            code: the code as typed.
            system: restrict to one system.

        Returns:
            The record, or None when the code is unknown or malformed.
        """
        try:
            return self._find(code, system)
        except MalformedCodeError:
            return None

    def _find(self, code: str, system: System | None) -> CodeRecord | None:
        found_system, canon = normalize_code(code, system)
        rec = self._by_code.get(canon)
        if rec is not None and rec.system == found_system:
            return rec
        if system is None and found_system == "HCPCS":
            # "S9340" is also "S93.40" typed without its dot.
            try:
                _, icd = normalize_code(code, "ICD10CM")
            except MalformedCodeError:
                return None
            return self._by_code.get(icd)
        return None

    def lookup(self, code: str, system: System | None = None) -> CodeRecord:
        """Return the record of a code, or explain why there is none.

        Args:
            code: the code as typed.
            system: restrict to one system.

        Returns:
            The record.

        Raises:
            MalformedCodeError: the text cannot be a code.
            UnknownCodeError: a well-formed code the knowledge base does not hold; the message
                suggests the nearest existing codes.
        """
        rec = self._find(code, system)
        if rec is not None:
            return rec
        found_system, canon = normalize_code(code, system)
        message = f"{canon} is not {_system_name(found_system, self.versions)}"
        if system is None and found_system == "HCPCS":
            _, icd = normalize_code(code, "ICD10CM")
            message += f", and {icd} is not {_system_name('ICD10CM', self.versions)}"
            canon, found_system = icd, "ICD10CM"
        hint = self._suggest_close(canon) if found_system == "ICD10CM" else ""
        raise UnknownCodeError(message + hint)

    def _suggest_close(self, canon: str) -> str:
        flat = canon.replace(".", "")
        for cut in range(len(flat) - 1, 2, -1):
            prefix = _dot(flat[:cut])
            rec = self._by_code.get(prefix)
            if rec is None:
                continue
            kids = [c.code for c in self._children.get(prefix, [])]
            if kids:
                shown = ", ".join(kids[:8]) + (", ..." if len(kids) > 8 else "")
                return f"; {prefix} exists, with codes {shown}"
            return f"; did you mean {prefix}?"
        return ""

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.get(code) is not None

    def iter_codes(self, system: System | None = None) -> Iterator[CodeRecord]:
        """Yield every record (of one system).

        ICD-10-CM comes in tabular order, each 7th-character code right after its parent;
        non-billable nodes are included.

        Args:
            system: only this system; None for all three.

        Yields:
            Records (shared: do not modify them).
        """
        for name in (system,) if system else SYSTEMS:
            yield from self._records[name]

    def header(self, key: str) -> TabularNode | None:
        """Return an ICD-10-CM chapter or block node, with its title and notes.

        Args:
            key: ``"chapter:19"`` or a block range such as ``"S90-S99"``.

        Returns:
            The node, or None when there is no such chapter or block.
        """
        return self._headers.get(key)

    # -- hierarchy -------------------------------------------------------------------------------
    def children(self, code: str) -> list[CodeRecord]:
        """Return the direct children of a code.

        Args:
            code: a code in any typed form.

        Returns:
            The children in tabular order (7th-character codes included); empty for a leaf and for
            HCPCS and CPT codes.

        Raises:
            MalformedCodeError: the code is malformed.
            UnknownCodeError: the code is unknown.
        """
        rec = self.lookup(code)
        return list(self._children.get(rec.code, ()))

    def ancestors(self, code: str) -> list[CodeRecord]:
        """Return the ancestors of a code.

        Args:
            code: a code in any typed form.

        Returns:
            Nearest first, up to its category (``S93.401A`` -> ``S93.401, S93.40, S93.4, S93``).

        Raises:
            MalformedCodeError: the code is malformed.
            UnknownCodeError: the code is unknown.
        """
        rec = self.lookup(code)
        out = []
        while rec.parent is not None:
            rec = self._by_code[rec.parent]
            out.append(rec)
        return out

    def billable_descendants(self, code: str) -> list[CodeRecord]:
        """Return every billable code under a code.

        Args:
            code: a code in any typed form (an index code such as ``S93.40``).

        Returns:
            Billable codes in tabular order; the code itself when it is billable.

        Raises:
            MalformedCodeError: the code is malformed.
            UnknownCodeError: the code is unknown.
        """
        rec = self.lookup(code)
        out: list[CodeRecord] = []
        stack = [rec]
        while stack:
            node = stack.pop()
            if node.billable:
                out.append(node)
            stack.extend(reversed(self._children.get(node.code, ())))
        return out

    # -- 7th characters --------------------------------------------------------------------------
    def seventh_characters(self, code: str) -> dict[str, str] | None:
        """Return the 7th characters that apply to a code.

        Args:
            code: a code in any typed form.

        Returns:
            Character -> meaning (a copy), or None when the code takes no 7th character.

        Raises:
            MalformedCodeError: the code is malformed.
            UnknownCodeError: the code is unknown.
        """
        rec = self.lookup(code)
        return dict(rec.seventh) if rec.seventh is not None else None

    def complete(self, code: str, seventh: str) -> str:
        """Add a 7th character to a code, with ``X`` placeholders where needed.

        Args:
            code: an ICD-10-CM leaf that requires a 7th character (``"T14.90"``, ``"S93.401"``).
            seventh: the character (``"A"``).

        Returns:
            The billable code, e.g. ``"T14.90XA"``.

        Raises:
            MalformedCodeError: the code or character is malformed.
            UnknownCodeError: the code does not exist.
            InvalidSeventhCharacterError: the code is not a leaf, its category takes no 7th
                character, it already has one, or the character is not allowed (the allowed ones
                are listed).
        """
        char = seventh.strip().upper()
        if len(char) != 1 or not char.isalnum():
            raise MalformedCodeError(f"{seventh!r} is not a single 7th character")
        rec = self._find(code, "ICD10CM")
        if rec is None:
            # "T14.90X" typed with its placeholder: the tabular lists T14.90.
            _, canon = normalize_code(code, "ICD10CM")
            trimmed = canon.rstrip("X").rstrip(".")
            rec = self._by_code.get(trimmed) if trimmed != canon else None
            if rec is None:
                rec = self.lookup(code, "ICD10CM")
        if rec.seventh is None:
            raise InvalidSeventhCharacterError(
                f"{rec.code} takes no 7th character (its category {_category(rec.code)} has no 7th-character rule)"
            )
        if rec.billable:
            raise InvalidSeventhCharacterError(f"{rec.code} already has its 7th character")
        kids = self._children.get(rec.code, [])
        if any(k.code != place_seventh(rec.code, k.code[-1]) for k in kids):
            shown = ", ".join(k.code for k in kids[:8]) + (", ..." if len(kids) > 8 else "")
            raise InvalidSeventhCharacterError(
                f"{rec.code} is not a leaf; choose one of its codes first ({shown}), then add the 7th character"
            )
        if char not in rec.seventh:
            allowed = ", ".join(f"{k} ({v})" for k, v in rec.seventh.items())
            raise InvalidSeventhCharacterError(
                f"{char!r} is not a valid 7th character for {rec.code}; allowed: {allowed}"
            )
        return place_seventh(rec.code, char)

    # -- Excludes ----------------------------------------------------------------------------------
    def _parse_notes(self, kind: str) -> dict[str, list[NoteReference]]:
        out: dict[str, list[NoteReference]] = {}
        for node in self._tabular.nodes:
            for note in getattr(node, kind):
                ref = parse_note_references(note, node.code)
                if ref is not None:
                    out.setdefault(node.code, []).append(ref)
        return out

    def _chain(self, rec: CodeRecord) -> list[str]:
        """The code, its ancestors, its block and its chapter: every place a note may sit."""
        chain = [rec.code]
        node = rec
        while node.parent is not None:
            node = self._by_code[node.parent]
            chain.append(node.code)
        if rec.block:
            chain.append(rec.block)
        if rec.chapter:
            chain.append(f"chapter:{rec.chapter}")
        return chain

    def _note_between(self, table: dict[str, list[NoteReference]], a: str, b: str) -> NoteReference | None:
        rec_a = self.lookup(a, "ICD10CM")
        rec_b = self.lookup(b, "ICD10CM")
        if rec_a.code == rec_b.code:
            return None
        for first, second in ((rec_a, rec_b), (rec_b, rec_a)):
            flat = second.code.replace(".", "")
            second_chain = set(self._chain(second))
            for owner in self._chain(first):
                if owner in second_chain:
                    continue  # a shared ancestor's note is about other codes
                for ref in table.get(owner, ()):
                    if ref.covers(flat):
                        return ref
        return None

    def excludes1_conflict(self, a: str, b: str) -> str | None:
        """Return the Excludes1 note that makes two ICD-10-CM codes mutually exclusive, or None.

        Notes printed under either code, its ancestors, its block or its chapter are checked.

        Args:
            a: one code.
            b: the other code.

        Returns:
            The note as printed (e.g. ``"type 1 diabetes mellitus (E10.-)"``), or None.

        Raises:
            MalformedCodeError: a code is malformed.
            UnknownCodeError: a code is not in ICD-10-CM.
        """
        ref = self._note_between(self._excludes1, a, b)
        return ref.note if ref else None

    def excludes1_source(self, a: str, b: str) -> tuple[str, str] | None:
        """Like :meth:`excludes1_conflict`, saying where the note is printed.

        Args:
            a: one code.
            b: the other code.

        Returns:
            ``(code, block or "chapter:N" the note is printed under, note)``, or None.

        Raises:
            MalformedCodeError: a code is malformed.
            UnknownCodeError: a code is not in ICD-10-CM.
        """
        ref = self._note_between(self._excludes1, a, b)
        return (ref.owner, ref.note) if ref else None

    def excludes2_notes(self, a: str, b: str) -> str | None:
        """Return the Excludes2 note ("not included here") linking two codes.

        Both codes may be reported together; the note tells the coder the second condition is
        coded separately.

        Args:
            a: one code.
            b: the other code.

        Returns:
            The note as printed, or None.

        Raises:
            MalformedCodeError: a code is malformed.
            UnknownCodeError: a code is not in ICD-10-CM.
        """
        ref = self._note_between(self._excludes2, a, b)
        return ref.note if ref else None

    # -- Alphabetic Index ----------------------------------------------------------------------
    def index_paths_for(self, code: str) -> list[IndexEntry]:
        """Return the index entries that lead to a code.

        An entry leads to a code when it gives the code itself, the code a 7th-character code was
        formed from, or an ancestor printed with a trailing dash (``Sprain > ankle -> S93.40-``).

        Args:
            code: an ICD-10-CM code in any typed form.

        Returns:
            Entries, exact ones first, then by nearest ancestor.
        """
        rec = self.get(code, "ICD10CM")
        if rec is None:
            return []
        out = [self.index_entries[i] for i in self._entries_by_code.get(rec.code, ())]
        base = rec.parent if rec.billable and rec.seventh is not None else None
        for i, anc in enumerate(self.ancestors(rec.code)):
            for j in self._entries_by_code.get(anc.code, ()):
                entry = self.index_entries[j]
                if entry.incomplete or (i == 0 and anc.code == base):
                    out.append(entry)
        return out

    # -- search ------------------------------------------------------------------------------------
    def search(self, text: str, system: System | None = None, limit: int = 20) -> list[SearchHit]:
        """Rank codes whose titles, inclusion terms, index paths or synonyms match ``text``.

        The search structure is built on the first call (a few seconds; see
        ``search_build_seconds``).

        Args:
            text: free text, e.g. ``"sprain of right ankle"``.
            system: restrict to one system.
            limit: maximum number of hits.

        Returns:
            Hits, best first.
        """
        if self._search is None:
            started = time.perf_counter()
            with _gc_paused():
                self._search = SearchIndex.build(self.iter_codes(), self.index_entries, self.get)
            self.search_build_seconds = time.perf_counter() - started
            logger.info("built the search index in %.2f s", self.search_build_seconds)
        return self._search.search(text, system=system, limit=limit)

    # -- statistics --------------------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, Any]]:
        """Return counts and versions per code set, plus Alphabetic Index counts.

        Returns:
            ``{"ICD10CM": {"codes", "billable", "version"}, "HCPCS": {...}, "CPT": {...},
            "ICD10CM_INDEX": {"entries", "by_source", "codes_not_in_tabular", ...}}``.
        """
        out: dict[str, dict[str, Any]] = {}
        for system in SYSTEMS:
            records = self._records[system]
            out[system] = {
                "codes": len(records),
                "billable": sum(1 for r in records if r.billable),
                "version": self.versions.get(system, ""),
            }
        out["ICD10CM"]["chapters"] = sum(1 for k in self._headers if k.startswith("chapter:"))
        out["ICD10CM"]["blocks"] = sum(1 for k in self._headers if not k.startswith("chapter:"))
        if self.index_entries:
            by_source: dict[str, int] = {}
            missing: set[str] = set()
            missing_entries = 0
            # Printed without a dash in the (older) index, yet not billable in the tabular and
            # taking no 7th character: the tabular has subdivided them (or the index is loose).
            not_billable: set[str] = set()
            for entry in self.index_entries:
                by_source[entry.source] = by_source.get(entry.source, 0) + 1
                if entry.code is None:
                    continue
                rec = self._by_code.get(entry.code)
                if rec is None:
                    missing.add(entry.code)
                    missing_entries += 1
                elif not entry.incomplete and not rec.billable and rec.seventh is None:
                    not_billable.add(entry.code)
            refs = [e for e in self.index_entries if e.see or e.see_also]
            out["ICD10CM_INDEX"] = {
                "entries": len(self.index_entries),
                "by_source": dict(sorted(by_source.items())),
                "with_code": sum(1 for e in self.index_entries if e.code is not None),
                "incomplete": sum(1 for e in self.index_entries if e.incomplete),
                "codes_not_in_tabular": len(missing),
                "entries_with_code_not_in_tabular": missing_entries,
                "complete_codes_not_billable": len(not_billable),
                "references": len(refs),
                "references_resolved": sum(1 for e in refs if e.see_path is not None),
                "version": self.versions.get("ICD10CM_INDEX", ""),
            }
        return out


# -- helpers -------------------------------------------------------------------------------------
_SYSTEM_NAMES = {"ICD10CM": "ICD-10-CM", "HCPCS": "HCPCS", "CPT": "CPT"}


def _system_name(system: str, versions: dict[str, str]) -> str:
    """``"an ICD-10-CM code (FY2026 ...)"``, ``"a HCPCS code (2020)"``."""
    name = _SYSTEM_NAMES.get(system, system)
    article = "an" if name[0] in "AEIOU" else "a"
    version = versions.get(system)
    return f"{article} {name} code" + (f" ({version})" if version else "")


def _dot(flat: str) -> str:
    return f"{flat[:3]}.{flat[3:]}" if len(flat) > 3 else flat


def _category(code: str) -> str:
    return code.split(".")[0]


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in ("codesuggest", "simple-icd-10-cm"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _write_gz_json(path: Path, data: Any) -> None:
    """Write JSON through gzip with a fixed header (no name, no time): same input, same bytes."""
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with (
        open(path, "wb") as handle,
        gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(raw)


def _read_gz_json(path: Path) -> Any:
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
        return json.loads(raw)
    except FileNotFoundError as exc:
        raise DataFileError(f"{path.name}: missing") from exc
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path.name}: unreadable ({exc})") from exc


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
