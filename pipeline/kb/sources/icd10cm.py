"""ICD-10-CM Tabular List reader: the CDC tabular XML -> nodes -> code records.

The CDC XML lists chapters, blocks (``section``) and ``diag`` nodes (categories, subcategories and
codes) with their notes. Codes that need a 7th character are *not* all listed: the 7th characters
are defined once (``sevenChrDef``) on a category or subcategory and apply to every leaf below it.
This module keeps the two steps apart:

* :func:`read_tabular` parses the XML into a :class:`Tabular` of :class:`TabularNode` (one per
  chapter, block and ``diag``), which is what the knowledge-base artefact stores;
* :func:`build_records` turns those nodes into :class:`~pipeline.kb.model.CodeRecord` objects,
  generating every 7th-character code (``S93.401`` + ``A`` -> ``S93.401A``, ``T14.90`` + ``A`` ->
  ``T14.90XA``, ``T07`` + ``A`` -> ``T07.XXXA``) with its inherited 7th-character table.

Billable means: a leaf that takes no 7th character, or a generated 7th-character code. Everything
else (categories, subcategories, leaves still waiting for their 7th character) stays in the list
with ``billable=False``.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.errors import DataFileError
from pipeline.kb.model import CodeRecord

logger = logging.getLogger(__name__)

TABULAR_SCHEMA = "codesuggest.kb.icd10cm-tabular/1"
PACKAGE_TABULAR = ("simple_icd_10_cm", "data", "icd10c-tabular-April-1-2026.xml")

# Note kinds kept on every node: XML tag -> attribute name of TabularNode / CodeRecord.
NOTE_TAGS = {
    "inclusionTerm": "inclusion_terms",
    "includes": "includes",
    "excludes1": "excludes1",
    "excludes2": "excludes2",
    "codeFirst": "code_first",
    "useAdditionalCode": "use_additional",
    "codeAlso": "code_also",
    "notes": "notes",
}
NOTE_FIELDS = tuple(NOTE_TAGS.values())
_NOTE_FIELD_SET = frozenset(NOTE_FIELDS)
_KINDS = frozenset(("chapter", "block", "code"))

_RANGE_SUFFIX = re.compile(r"\s*\(([A-Z0-9]{3}(?:-[A-Z0-9]{3})?)\)\s*$")
_RELEASE_RE = re.compile(
    r"(January|February|March|April|May|June|July|August|September|October|"
    r"November|December)-(\d{1,2})-(\d{4})",
    re.IGNORECASE,
)
# "7th characters D and S do not apply to codes in category S06 with 6th character 7 - ...,
# or 8 - ..."
_SEVENTH_RULE_RE = re.compile(
    r"7th characters? (?P<chars>[A-Z](?:(?:,| and| or)\s*[A-Z])*) do(?:es)? not apply to codes in "
    r"(?:sub)?category [A-Z0-9.]+ with (?P<pos>\d)(?:st|nd|rd|th) character (?P<rest>.*)",
    re.IGNORECASE,
)


@dataclass(slots=True)
class TabularNode:
    """One chapter, block or ``diag`` element of the Tabular List, as printed (no expansions).

    Attributes:
        code: ``"19"`` for a chapter, ``"S90-S99"`` for a block, the dotted code for a ``diag``.
        kind: ``chapter``, ``block`` or ``code``.
        title: the description (range suffix removed for chapters and blocks).
        parent: the enclosing ``diag`` code; None for categories, blocks and chapters.
        chapter: the chapter number.
        block: the block id (None for chapters).
        inclusion_terms: inclusion terms.
        includes: "Includes" notes.
        excludes1: Excludes1 notes.
        excludes2: Excludes2 notes.
        code_first: "Code first" notes.
        use_additional: "Use additional code" notes.
        code_also: "Code also" notes.
        notes: other instructional notes.
        seventh_def: the 7th-character table defined on this very node, or None.
        seventh_note: the note that introduces the 7th-character table.
    """

    code: str
    kind: str
    title: str
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
    notes: tuple[str, ...] = ()
    seventh_def: dict[str, str] | None = None
    seventh_note: str | None = None

    def to_list(self) -> list[Any]:
        """Return the compact JSON form.

        Returns:
            ``[code, kind, title, parent, chapter, block, {notes...}]``, empty notes left out.
        """
        extra: dict[str, Any] = {name: list(getattr(self, name)) for name in NOTE_FIELDS if getattr(self, name)}
        if self.seventh_def is not None:
            extra["seventh_def"] = self.seventh_def
        if self.seventh_note:
            extra["seventh_note"] = self.seventh_note
        return [self.code, self.kind, self.title, self.parent, self.chapter, self.block, extra]

    @classmethod
    def from_list(cls, row: Any, where: str) -> TabularNode:
        """Inverse of :meth:`to_list`, strict about shape and keys.

        Args:
            row: the parsed JSON list.
            where: file and position, for error messages.

        Returns:
            The node.

        Raises:
            DataFileError: the row is not a node, naming ``where``.
        """
        if not isinstance(row, list) or len(row) != 7 or not isinstance(row[6], dict):
            raise DataFileError(f"{where}: expected [code, kind, title, parent, chapter, block, notes]")
        code, kind, title, parent, chapter, block, extra = row
        if not isinstance(code, str) or kind not in _KINDS or not isinstance(title, str):
            raise DataFileError(f"{where}: bad code/kind/title {row[:3]!r}")
        node = cls(code, kind, title, parent, chapter, block)
        for name, values in extra.items():  # usually empty: most nodes carry no notes
            if name in _NOTE_FIELD_SET:
                if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                    raise DataFileError(f"{where}: {name} must be a list of strings")
                setattr(node, name, tuple(values))
            elif name == "seventh_def":
                if not isinstance(values, dict) or not all(
                    isinstance(k, str) and len(k) == 1 and isinstance(v, str) for k, v in values.items()
                ):
                    raise DataFileError(f"{where}: seventh_def must map one character to a meaning")
                node.seventh_def = dict(values)
            elif name == "seventh_note":
                if not isinstance(values, str):
                    raise DataFileError(f"{where}: seventh_note must be a string")
                node.seventh_note = values
            else:
                raise DataFileError(f"{where}: unknown key {name!r}")
        return node


@dataclass
class Tabular:
    """The parsed Tabular List.

    Attributes:
        fiscal_year: the ``<version>`` of the file, e.g. ``"2026"``.
        release: the update named in the file name, e.g. ``"April 1, 2026"``, or "".
        nodes: chapters, blocks and codes in tabular order.
        source: where it was read from (file name only).
    """

    fiscal_year: str
    release: str
    nodes: list[TabularNode] = field(default_factory=list)
    source: str = ""

    @property
    def version(self) -> str:
        """Return the human-readable version.

        Returns:
            E.g. ``"FY2026 (April 1, 2026 update)"``.
        """
        suffix = f" ({self.release} update)" if self.release else ""
        return f"FY{self.fiscal_year}{suffix}"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form.

        Returns:
            A dict with a ``schema`` key and one compact list per node.
        """
        return {
            "schema": TABULAR_SCHEMA,
            "fiscal_year": self.fiscal_year,
            "release": self.release,
            "source": self.source,
            "nodes": [node.to_list() for node in self.nodes],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str) -> Tabular:
        """Validate and rebuild from :meth:`to_dict` output.

        Args:
            data: the parsed JSON.
            source: the file it came from, for error messages.

        Returns:
            The tabular list.

        Raises:
            DataFileError: wrong schema, unknown keys or a bad node, naming ``source``.
        """
        if not isinstance(data, dict) or data.get("schema") != TABULAR_SCHEMA:
            raise DataFileError(f"{source}: expected schema {TABULAR_SCHEMA!r}")
        unknown = set(data) - {"schema", "fiscal_year", "release", "source", "nodes"}
        if unknown:
            raise DataFileError(f"{source}: unknown keys {sorted(unknown)}")
        rows = data.get("nodes")
        if not isinstance(rows, list):
            raise DataFileError(f"{source}: nodes must be a list")
        nodes = [TabularNode.from_list(row, f"{source}: nodes[{i}]") for i, row in enumerate(rows)]
        return cls(
            fiscal_year=str(data.get("fiscal_year", "")),
            release=str(data.get("release", "")),
            nodes=nodes,
            source=str(data.get("source", "")),
        )


def packaged_tabular_path() -> Path:
    """Return the tabular XML shipped inside the ``simple-icd-10-cm`` package.

    Returns:
        Its path.

    Raises:
        DataFileError: the package or its data file is not installed.
    """
    try:
        ref = resources.files(PACKAGE_TABULAR[0]).joinpath(*PACKAGE_TABULAR[1:])
    except ModuleNotFoundError as exc:
        raise DataFileError("simple-icd-10-cm is not installed; cannot find the packaged tabular XML") from exc
    path = Path(str(ref))
    if not path.is_file():
        raise DataFileError(f"{path}: packaged tabular XML is missing")
    return path


def find_tabular_file(data_dir: Path) -> Path | None:
    """Find the tabular XML in a reference data folder.

    Args:
        data_dir: the reference data folder.

    Returns:
        The last ``icd10cm/icd10c*-tabular-*.xml`` by name, or None when there is none.
    """
    folder = Path(data_dir) / "icd10cm"
    found = sorted(folder.glob("icd10c*-tabular-*.xml")) if folder.is_dir() else []
    return found[-1] if found else None


def read_tabular(path: Path | None = None) -> Tabular:
    """Parse the CDC ICD-10-CM tabular XML.

    Args:
        path: the XML file; None reads the copy packaged with ``simple-icd-10-cm``.

    Returns:
        Every chapter, block and ``diag`` node in tabular order.

    Raises:
        DataFileError: missing file, XML syntax error (with its line) or an unexpected structure.
    """
    path = Path(path) if path is not None else packaged_tabular_path()
    if not path.is_file():
        raise DataFileError(f"{path}: no such tabular XML file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else "?"
        raise DataFileError(f"{path}: line {line}: not well-formed XML ({exc.msg})") from exc
    if root.tag != "ICD10CM.tabular":
        raise DataFileError(f"{path}: root element is <{root.tag}>, expected <ICD10CM.tabular>")
    fiscal_year = (root.findtext("version") or "").strip()
    match = _RELEASE_RE.search(path.name)
    release = f"{match.group(1).capitalize()} {int(match.group(2))}, {match.group(3)}" if match else ""
    nodes: list[TabularNode] = []
    seen: set[str] = set()
    for chapter in root.iter("chapter"):
        number = (chapter.findtext("name") or "").strip()
        if not number:
            raise DataFileError(f"{path}: a <chapter> has no <name>")
        nodes.append(
            _node(
                chapter,
                f"chapter:{number}",
                "chapter",
                _strip_range(chapter.findtext("desc")),
                None,
                number,
                None,
                path,
            )
        )
        for section in chapter.findall("section"):
            block = section.get("id") or ""
            if not block:
                raise DataFileError(f"{path}: a <section> of chapter {number} has no id")
            nodes.append(
                _node(
                    section,
                    block,
                    "block",
                    _strip_range(section.findtext("desc")),
                    None,
                    number,
                    block,
                    path,
                )
            )
            for diag in section.findall("diag"):
                _walk(diag, None, number, block, nodes, seen, path)
    if not any(n.kind == "code" for n in nodes):
        raise DataFileError(f"{path}: no <diag> codes found")
    logger.info("read %d tabular nodes (FY%s) from %s", len(nodes), fiscal_year, path.name)
    return Tabular(fiscal_year=fiscal_year, release=release, nodes=nodes, source=path.name)


def _walk(
    elem: ET.Element,
    parent: str | None,
    chapter: str,
    block: str,
    out: list[TabularNode],
    seen: set[str],
    path: Path,
) -> None:
    code = (elem.findtext("name") or "").strip().upper()
    if not re.fullmatch(r"[A-Z][0-9A-Z][0-9A-Z](\.[0-9A-Z]{1,4})?", code):
        raise DataFileError(f"{path}: bad diag name {code!r} under {parent or block}")
    if code in seen:
        raise DataFileError(f"{path}: code {code} appears twice")
    seen.add(code)
    out.append(_node(elem, code, "code", (elem.findtext("desc") or "").strip(), parent, chapter, block, path))
    for child in elem.findall("diag"):
        _walk(child, code, chapter, block, out, seen, path)


def _node(
    elem: ET.Element,
    code: str,
    kind: str,
    title: str,
    parent: str | None,
    chapter: str,
    block: str | None,
    path: Path,
) -> TabularNode:
    node = TabularNode(code=code, kind=kind, title=title, parent=parent, chapter=chapter, block=block)
    for tag, name in NOTE_TAGS.items():
        notes = [_clean(n.text) for sub in elem.findall(tag) for n in sub.findall("note")]
        setattr(node, name, tuple(n for n in notes if n))
    seventh = elem.find("sevenChrDef")
    if seventh is not None:
        table: dict[str, str] = {}
        # A <note> after an <extension> widens it ("B ... type I or II" also covers "open
        # fracture NOS"); the title keeps the extension's wording, the note goes to seventh_note.
        widened: list[str] = []
        char = ""
        for item in seventh:
            if item.tag == "extension":
                char = (item.get("char") or "").strip().upper()
                if len(char) != 1:
                    raise DataFileError(f"{path}: {code}: bad 7th character {char!r}")
                table[char] = _clean(item.text)
            elif item.tag == "note" and char and _clean(item.text):
                widened.append(f"{char} also: {_clean(item.text)}")
        if not table:
            raise DataFileError(f"{path}: {code}: empty sevenChrDef")
        node.seventh_def = table
        note = elem.find("sevenChrNote/note")
        parts = ([_clean(note.text)] if note is not None else []) + widened
        node.seventh_note = "; ".join(parts) or None
    return node


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def _strip_range(text: str | None) -> str:
    return _RANGE_SUFFIX.sub("", _clean(text))


def place_seventh(code: str, char: str) -> str:
    """Append a 7th character to a dotted code, padding with ``X`` placeholders to six characters.

    Args:
        code: a dotted (or 3-character) ICD-10-CM code of at most six characters.
        char: the 7th character.

    Returns:
        ``"T14.90"`` + ``"A"`` -> ``"T14.90XA"``; ``"S93.401"`` -> ``"S93.401A"``; ``"T07"`` ->
        ``"T07.XXXA"``.
    """
    head, _, tail = code.partition(".")
    return f"{head}.{tail.ljust(3, 'X')}{char}"


@dataclass(frozen=True, slots=True)
class SeventhRule:
    """A restriction printed as a note: some 7th characters do not apply to some codes.

    Attributes:
        scope: the code whose note states it; applies to leaves under it.
        position: 0-based character position (undotted) the condition looks at.
        values: characters at ``position`` the rule applies to.
        excluded: 7th characters that are not allowed there.
        note: the note as printed.
    """

    scope: str
    position: int
    values: frozenset[str]
    excluded: frozenset[str]
    note: str

    def allowed(self, code: str, table: dict[str, str]) -> dict[str, str]:
        """Apply the rule to one code.

        Args:
            code: a dotted code that takes a 7th character.
            table: the 7th characters it would otherwise take.

        Returns:
            ``table`` without the excluded characters when the rule applies, else ``table``.
        """
        flat = code.replace(".", "")
        if not flat.startswith(self.scope.replace(".", "")) or len(flat) <= self.position:
            return table
        if flat[self.position] not in self.values:
            return table
        return {k: v for k, v in table.items() if k not in self.excluded}


def parse_seventh_rules(node: TabularNode) -> list[SeventhRule]:
    """Read the "7th characters X and Y do not apply to ... with Nth character ..." notes.

    Args:
        node: a tabular node.

    Returns:
        The rules its notes state (usually none).
    """
    rules = []
    for note in node.notes:
        match = _SEVENTH_RULE_RE.search(note)
        if not match:
            continue
        excluded = frozenset(re.findall(r"\b([A-Z])\b", match.group("chars").upper()))
        values = frozenset(re.findall(r"\b(\w)\s*-", match.group("rest")))
        if excluded and values:
            rules.append(SeventhRule(node.code, int(match.group("pos")) - 1, values, excluded, note))
    return rules


def build_records(tabular: Tabular) -> tuple[list[CodeRecord], dict[str, TabularNode]]:
    """Turn tabular nodes into code records, generating every 7th-character code.

    Args:
        tabular: the parsed tabular list.

    Returns:
        ``(records, headers)``: the ICD-10-CM records in tabular order (a 7th-character code right
        after its parent), and the chapter/block nodes by id (``"chapter:19"``, ``"S90-S99"``).
    """
    headers = {n.code: n for n in tabular.nodes if n.kind != "code"}
    codes = [n for n in tabular.nodes if n.kind == "code"]
    has_children = {n.parent for n in codes if n.parent}
    by_code = {n.code: n for n in codes}
    rules_at: dict[str, list[SeventhRule]] = {}
    for node in codes:
        found = parse_seventh_rules(node)
        if found:
            rules_at[node.code] = found
    records: list[CodeRecord] = []
    inherited: dict[str, dict[str, str] | None] = {}
    for node in codes:
        seventh = (
            node.seventh_def if node.seventh_def is not None else (inherited.get(node.parent) if node.parent else None)
        )
        inherited[node.code] = seventh
        leaf = node.code not in has_children
        meta: dict[str, str] = {}
        if node.notes:
            meta["notes"] = "\n".join(node.notes)
        if node.seventh_note:
            meta["seventh_note"] = node.seventh_note
        if leaf and seventh is not None:
            seventh = _restrict(node.code, seventh, _rules_for(node, by_code, rules_at))
        records.append(
            CodeRecord(
                code=node.code,
                system="ICD10CM",
                title=node.title,
                billable=leaf and seventh is None,
                parent=node.parent,
                chapter=node.chapter,
                block=node.block,
                inclusion_terms=node.inclusion_terms,
                includes=node.includes,
                excludes1=node.excludes1,
                excludes2=node.excludes2,
                code_first=node.code_first,
                use_additional=node.use_additional,
                code_also=node.code_also,
                seventh=seventh,
                meta=meta,
            )
        )
        if leaf and seventh is not None:
            records.extend(_expansions(node, seventh))
    return records, headers


def _rules_for(
    node: TabularNode, by_code: dict[str, TabularNode], rules_at: dict[str, list[SeventhRule]]
) -> list[SeventhRule]:
    found: list[SeventhRule] = []
    code: str | None = node.code
    while code is not None:
        found.extend(rules_at.get(code, ()))
        parent = by_code.get(code)
        code = parent.parent if parent else None
    return found


def _restrict(code: str, table: dict[str, str], rules: Iterable[SeventhRule]) -> dict[str, str]:
    for rule in rules:
        table = rule.allowed(code, table)
    return table


def _expansions(node: TabularNode, seventh: dict[str, str]) -> Iterator[CodeRecord]:
    padded = len(node.code.replace(".", "")) < 6
    for char, meaning in seventh.items():
        # Positional for speed (51,000 of these at every load): see CodeRecord's field order.
        yield CodeRecord(
            place_seventh(node.code, char),
            "ICD10CM",
            f"{node.title}, {meaning}" if meaning else node.title,
            True,
            node.code,
            node.chapter,
            node.block,
            (),
            (),
            (),
            (),
            (),
            (),
            (),
            seventh,
            padded,
        )
