"""ICD-10-CM Alphabetic Index readers: CDC index XML, flattened CSV, Neoplasm Table, Table of Drugs.

The index is a tree of lines: a main term (``Sprain``) with subterms (``ankle`` >
``calcaneofibular ligament``), each line giving a code (``S93.41-``: the dash says more characters
must be picked in the tabular list), non-essential modifiers in parentheses, and "see" / "see
also" cross references. The Neoplasm Table and the Table of Drugs and Chemicals have the same tree
with one code per column (``malignant primary``, ``poisoning accidental``...).

Two formats are read into the same :class:`IndexNode` tree:

* the CDC XML (``ICD10CM.index`` root; schema ``icd10cm-index-2025.xsd``), used for the main index,
  the External Cause Index and both tables (tables carry ``indexHeading`` and ``cell`` elements);
* the flattened CSV (``RowID,Letter,Level,Term,...``) where the tree follows from ``Level`` and
  row order.

:class:`AlphabeticIndex` holds every source, resolves cross references to the node they point at
(``"Abscess, lower limb"`` -> the line ``Abscess > lower limb``), and yields one
:class:`~pipeline.kb.model.IndexEntry` per (line, code).
"""

from __future__ import annotations

import csv
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import DataFileError, MalformedCodeError
from pipeline.kb.model import IndexEntry, normalize_code

logger = logging.getLogger(__name__)

INDEX_SCHEMA = "codesuggest.kb.icd10cm-index/1"
SOURCES = ("index", "external", "neoplasm", "drug")
_SOURCE_SET = frozenset(SOURCES)

# Canonical column names of the two tables, by CSV column name.
NEOPLASM_CSV_COLUMNS = {
    "MalignantPrimary": "malignant primary",
    "MalignantSecondary": "malignant secondary",
    "CaInSitu": "ca in situ",
    "Benign": "benign",
    "UncertainBehavior": "uncertain behavior",
    "UnspecifiedBehavior": "unspecified behavior",
}
DRUG_CSV_COLUMNS = {
    "PoisoningAccidental": "poisoning accidental",
    "PoisoningIntentionalSelfHarm": "poisoning intentional self-harm",
    "PoisoningAssault": "poisoning assault",
    "PoisoningUndetermined": "poisoning undetermined",
    "AdverseEffect": "adverse effect",
    "Underdosing": "underdosing",
}
_INDEX_CSV_FIELDS = ("RowID", "Letter", "Level", "Term", "See", "SeeAlso", "NonEssModif", "Code")
_NO_CODE = {"", "-", "--", "\u2014"}
_PARENS = re.compile(r"\(([^()]*)\)")
# Tails of a reference that tell the reader to choose, not name a line ("Abscess, by site").
_INSTRUCTION_TAIL = re.compile(r"^by\b", re.IGNORECASE)
_QUALIFIER_TAIL = re.compile(r"\s+(nec|nos)$")
# "see condition": look the condition up, not a line of the index.
_NOT_A_TERM = {"condition", "conditions", "condition or disease"}
_CODE_REFERENCE = re.compile(r"^\s*(sub)?categor(y|ies)\b|^\s*codes?\s+[A-Z][0-9]", re.IGNORECASE)
_CODE_IN_TEXT = re.compile(r"\b[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{0,4})?-?")


@dataclass(slots=True)
class IndexNode:
    """One line of an index tree.

    Attributes:
        source: ``index``, ``external``, ``neoplasm`` or ``drug``.
        parent: position of the parent line in the same :class:`AlphabeticIndex`; -1 for a main
            term.
        title: the term without its non-essential modifiers.
        nonessential: the non-essential modifiers, without parentheses.
        see: "see" reference as printed.
        see_also: "see also" reference as printed.
        codes: ``(code, incomplete, column)`` for every code the line gives (tables: one a column).
        see_target: the line the "see" (else "see also") reference resolves to, or None.
    """

    source: str
    parent: int
    title: str
    nonessential: tuple[str, ...] = ()
    see: str | None = None
    see_also: str | None = None
    codes: tuple[tuple[str, bool, str | None], ...] = ()
    see_target: int | None = None

    def to_list(self) -> list[Any]:
        """Return the compact JSON form.

        Returns:
            ``[source, parent, title, nonessential, see, see_also, codes, see_target]``.
        """
        return [
            self.source,
            self.parent,
            self.title,
            list(self.nonessential),
            self.see,
            self.see_also,
            [[c, int(inc), col] for c, inc, col in self.codes],
            self.see_target,
        ]

    @classmethod
    def from_list(cls, row: Any, where: str) -> IndexNode:
        """Inverse of :meth:`to_list`.

        Args:
            row: the parsed JSON list.
            where: file and position, for error messages.

        Returns:
            The line.

        Raises:
            DataFileError: the row has the wrong shape, naming ``where``.
        """
        if not isinstance(row, list) or len(row) != 8:
            raise DataFileError(f"{where}: expected an 8-item index line")
        source, parent, title, nonessential, see, see_also, codes, target = row
        if source not in _SOURCE_SET or type(parent) is not int or type(title) is not str:
            raise DataFileError(f"{where}: bad source/parent/title {row[:3]!r}")
        parsed: tuple[tuple[str, bool, str | None], ...] = ()
        if codes:
            try:
                parsed = tuple((c, inc == 1, col) for c, inc, col in codes)
            except (TypeError, ValueError) as exc:
                raise DataFileError(f"{where}: bad codes {codes!r}") from exc
            if not all(type(c[0]) is str for c in parsed):
                raise DataFileError(f"{where}: bad codes {codes!r}")
        return cls(
            source,
            parent,
            title,
            tuple(nonessential) if nonessential else (),
            see,
            see_also,
            parsed,
            target,
        )


@dataclass
class AlphabeticIndex:
    """Every index tree (main index, external causes, neoplasm and drug tables) in one list.

    Attributes:
        nodes: index lines; a line's parent always comes before it.
        versions: source -> fiscal year of the file (``"2025"``).
        files: source -> file name it was read from.
    """

    nodes: list[IndexNode] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def add(self, source: str, nodes: Sequence[IndexNode], version: str, file_name: str) -> None:
        """Append one source's tree and note its version.

        Args:
            source: its label.
            nodes: its lines, parents given as positions in ``nodes`` (shifted here).
            version: its fiscal year.
            file_name: the file it was read from.
        """
        offset = len(self.nodes)
        for node in nodes:
            if node.parent >= 0:
                node.parent += offset
            if node.see_target is not None:
                node.see_target += offset
            self.nodes.append(node)
        self.versions[source] = version
        self.files[source] = file_name

    def paths(self) -> list[tuple[str, ...]]:
        """Return the path of every line.

        Returns:
            By position: ``(main term, subterm, ...)``.
        """
        out: list[tuple[str, ...]] = []
        for node in self.nodes:
            out.append((*out[node.parent], node.title) if node.parent >= 0 else (node.title,))
        return out

    def resolve_references(self) -> dict[str, int]:
        """Point every "see" / "see also" reference at the line it names.

        References are split at commas and matched level by level, case-insensitively; a level may
        itself contain commas (``"femur, head"``) and a term may be named by the part before its
        comma (``"Disease"`` for ``"Disease, diseased"``). A trailing instruction (``"by site"``)
        and, in the tables, a column name (``"Neoplasm, malignant, by site"``) are accepted as
        resolved at the line above them. ``"see condition"`` and the like stay unresolved.

        Returns:
            Counts: ``resolved``, ``unresolved``.
        """
        finder = _ReferenceFinder(self.nodes)
        counts = {"resolved": 0, "unresolved": 0}
        for node in self.nodes:
            node.see_target = None
            for ref in (node.see, node.see_also):
                if not ref:
                    continue
                target = finder.find(ref, node.source)
                if target is not None and node.see_target is None:
                    node.see_target = target
                counts["resolved" if target is not None else "unresolved"] += 1
        return counts

    def entries(self) -> list[IndexEntry]:
        """Return the entries of the index.

        Returns:
            One :class:`IndexEntry` per (line, code); a line without codes gives one entry with
            ``code=None``.
        """
        paths = self.paths()
        out: list[IndexEntry] = []
        for node, path in zip(self.nodes, paths, strict=True):
            see_path = paths[node.see_target] if node.see_target is not None else None
            codes = node.codes or ((None, False, None),)
            for code, incomplete, column in codes:
                # Positional for speed (138,000 entries at every load): IndexEntry's field order.
                out.append(
                    IndexEntry(
                        path,
                        code,
                        incomplete,
                        node.nonessential,
                        node.see,
                        node.see_also,
                        see_path,
                        node.source,
                        column,
                    )
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form.

        Returns:
            A dict with a ``schema`` key and one compact list per line.
        """
        return {
            "schema": INDEX_SCHEMA,
            "versions": dict(sorted(self.versions.items())),
            "files": dict(sorted(self.files.items())),
            "nodes": [n.to_list() for n in self.nodes],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str) -> AlphabeticIndex:
        """Validate and rebuild from :meth:`to_dict` output.

        Args:
            data: the parsed JSON.
            source: the file it came from, for error messages.

        Returns:
            The index.

        Raises:
            DataFileError: wrong schema, unknown keys or bad lines, naming ``source``.
        """
        if not isinstance(data, dict) or data.get("schema") != INDEX_SCHEMA:
            raise DataFileError(f"{source}: expected schema {INDEX_SCHEMA!r}")
        unknown = set(data) - {"schema", "versions", "files", "nodes"}
        if unknown:
            raise DataFileError(f"{source}: unknown keys {sorted(unknown)}")
        rows = data.get("nodes")
        if not isinstance(rows, list):
            raise DataFileError(f"{source}: nodes must be a list")
        nodes = [IndexNode.from_list(row, f"{source}: nodes[{i}]") for i, row in enumerate(rows)]
        for i, node in enumerate(nodes):
            if node.parent >= i or (node.see_target is not None and not 0 <= node.see_target < len(nodes)):
                raise DataFileError(f"{source}: nodes[{i}]: parent or reference out of range")
        return cls(nodes=nodes, versions=dict(data.get("versions", {})), files=dict(data.get("files", {})))


class _ReferenceFinder:
    """Finds the line a cross reference names (see :meth:`AlphabeticIndex.resolve_references`)."""

    def __init__(self, nodes: list[IndexNode]) -> None:
        self.nodes = nodes
        self.exact: dict[tuple[str, int], list[int]] = {}
        self.head: dict[tuple[str, int], list[int]] = {}
        self.columns: dict[str, set[str]] = {}
        children = [0] * len(nodes)
        for i, node in enumerate(nodes):
            key = _key(node.title)
            self.exact.setdefault((key, node.parent), []).append(i)
            for alt in _alternative_keys(key):
                self.head.setdefault((alt, node.parent), []).append(i)
            if node.parent >= 0:
                children[node.parent] += 1
            for _, _, column in node.codes:
                if column:
                    words = self.columns.setdefault(node.source, set())
                    words.add(_key(column))
                    words.update(_key(w) for w in column.split())
        # Several terms may answer to one head ("Fracture, pathological", "Fracture, traumatic"):
        # try a spelling variant of the head first ("Disease, diseased"), then the fullest term.
        for (alt, _), found in self.head.items():
            found.sort(key=lambda i: (not _is_variant(alt, nodes[i].title), -children[i], i))

    def find(self, ref: str, source: str) -> int | None:
        parts = [p.strip() for p in ref.split(",") if p.strip()]
        if not parts or _key(parts[0]) in _NOT_A_TERM or _CODE_REFERENCE.match(ref):
            return None
        if _key(parts[0]) == "table of neoplasms":
            parts[0], source = "Neoplasm", "neoplasm"
        order = [source, *[s for s in SOURCES if s != source]]
        for src in order:
            found = self._match(-1, parts, 0, src)
            if found is not None:
                return found
        return None

    def _match(self, parent: int, parts: list[str], i: int, source: str) -> int | None:
        if i == len(parts) or _INSTRUCTION_TAIL.match(parts[i]):
            return parent if parent >= 0 else None
        for j in range(len(parts), i, -1):
            key = _key(", ".join(parts[i:j]))
            candidates = list(self.exact.get((key, parent), ()))
            for alt in (key, *_alternative_keys(key)) if j == i + 1 else ():
                candidates += self.head.get((alt, parent), [])
            for cand in candidates:
                if self.nodes[cand].source != source:
                    continue
                found = self._match(cand, parts, j, source)
                if found is not None:
                    return found
        if parent >= 0 and _key(parts[i]) in self.columns.get(source, ()):
            return self._match(parent, parts, i + 1, source)
        # The flattened CSV drops the words printed after a term's non-essential modifiers
        # ("Struck (accidentally) by" became "Struck"): try the reference's leading words.
        words = _key(parts[i]).split()
        for k in range(len(words) - 1, 0, -1):
            for cand in self.exact.get((" ".join(words[:k]), parent), ()):
                if self.nodes[cand].source == source and self.nodes[cand].nonessential:
                    found = self._match(cand, parts, i + 1, source)
                    if found is not None:
                        return found
        return None


def _key(text: str) -> str:
    return " ".join(text.lower().replace("\u2019", "'").split())


def _alternative_keys(key: str) -> set[str]:
    """Other ways a reference may name a term: ``"skin NOS"`` as ``"skin"``, ``"Disease, diseased"``
    as ``"disease"``, ``"acute or subacute"`` as ``"acute"``."""
    bare = _QUALIFIER_TAIL.sub("", key)
    head = _QUALIFIER_TAIL.sub("", bare.split(",")[0].strip())
    alts = {bare, head, head.split(" or ")[0].strip()}
    alts.discard(key)
    alts.discard("")
    return alts


def _is_variant(head: str, title: str) -> bool:
    rest = _key(title).split(",")[1:]
    return bool(rest) and all(r.strip()[:4] == head[:4] for r in rest)


def reference_codes(text: str) -> list[str]:
    """Return the codes a "see category ..." reference names.

    Args:
        text: a reference such as ``"subcategory M14.8-"`` or ``"category M01"``.

    Returns:
        The codes (canonical, dash removed); empty when the reference names a term instead.
    """
    if not _CODE_REFERENCE.match(text):
        return []
    found = []
    for raw in _CODE_IN_TEXT.findall(text):
        try:
            found.append(normalize_code(raw.rstrip("-").rstrip("."), "ICD10CM")[1])
        except MalformedCodeError:
            continue
    return found


def parse_code(text: str, where: str) -> tuple[str, bool] | None:
    """Parse an index code cell.

    Args:
        text: e.g. ``"S93.41-"``, ``"C56.-"``, ``"T39.1X1"``, ``"--"``.
        where: file and line, for error messages.

    Returns:
        ``(canonical code, incomplete)`` (``("S93.41", True)``), or None for an empty cell.

    Raises:
        DataFileError: the cell is neither empty nor an ICD-10-CM code, naming ``where``.
    """
    raw = text.strip()
    if raw in _NO_CODE:
        return None
    incomplete = raw.endswith("-")
    try:
        _, code = normalize_code(raw.rstrip("-").rstrip("."), "ICD10CM")
    except MalformedCodeError as exc:
        raise DataFileError(f"{where}: {raw!r} is not an ICD-10-CM code") from exc
    return code, incomplete


def split_nonessential(text: str) -> tuple[str, ...]:
    """Split non-essential modifiers.

    Args:
        text: e.g. ``"(joint) (ligament)"``.

    Returns:
        ``("joint", "ligament")``.
    """
    found = tuple(" ".join(m.split()) for m in _PARENS.findall(text) if m.strip())
    if not found and text.strip():
        return (" ".join(text.strip().strip("()").split()),)
    return found


def normalize_column(heading: str) -> str:
    """Turn a table heading into a column name.

    Args:
        heading: e.g. ``"Poisoning Accidental (unintentional)"``.

    Returns:
        ``"poisoning accidental"``: lower case, parenthesised words dropped.
    """
    return " ".join(_PARENS.sub(" ", heading).lower().split())


# -- CDC XML ------------------------------------------------------------------------------------
def read_index_xml(path: Path, source: str) -> tuple[list[IndexNode], str]:
    """Read a CDC index XML file (main index, External Cause Index, Neoplasm Table, Table of Drugs).

    Args:
        path: the XML file (root ``ICD10CM.index``).
        source: the source label its lines get (``index``, ``external``, ``neoplasm``, ``drug``).

    Returns:
        ``(lines, fiscal year)``; parents are positions in the returned list.

    Raises:
        DataFileError: missing file, XML syntax error (with its line), wrong root, bad code.
    """
    path = Path(path)
    if source not in SOURCES:
        raise ValueError(f"unknown index source {source!r}")
    if not path.is_file():
        raise DataFileError(f"{path}: no such index file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else "?"
        raise DataFileError(f"{path}: line {line}: not well-formed XML ({exc.msg})") from exc
    if root.tag != "ICD10CM.index":
        raise DataFileError(f"{path}: root element is <{root.tag}>, expected <ICD10CM.index>")
    columns = {h.get("col", ""): normalize_column("".join(h.itertext())) for h in root.iter("head")}
    out: list[IndexNode] = []
    for letter in root.findall("letter"):
        for main in letter.findall("mainTerm"):
            _xml_term(main, -1, source, columns, out, path, ())
    if not out:
        raise DataFileError(f"{path}: no <mainTerm> found")
    version = (root.findtext("version") or "").strip() or _year(path.name)
    logger.info("read %d %s index lines from %s", len(out), source, path.name)
    return out, version


def _xml_term(
    elem: ET.Element,
    parent: int,
    source: str,
    columns: dict[str, str],
    out: list[IndexNode],
    path: Path,
    trail: tuple[str, ...],
) -> None:
    title_elem = elem.find("title")
    if title_elem is None:
        title_elem = elem.find("diff")
    if title_elem is None:
        raise DataFileError(f"{path}: a term under {' > '.join(trail) or 'a letter'} has no <title>")
    title, nonessential = _xml_title(title_elem)
    if not title:
        raise DataFileError(f"{path}: an empty <title> under {' > '.join(trail) or 'a letter'}")
    here = (*trail, title)
    where = f"{path}: {' > '.join(here)}"
    codes: list[tuple[str, bool, str | None]] = []
    for child in elem:
        tag = child.tag
        text = "".join(child.itertext()).strip()
        if tag == "code":
            parsed = parse_code(text, where)
            if parsed:
                codes.append((parsed[0], parsed[1], None))
        elif tag in ("subcat", "seecat"):
            # "see subcategory T75.0" / "see category T71": pick the rest in the tabular list.
            parsed = parse_code(text, where)
            if parsed:
                codes.append((parsed[0], True, None))
        elif tag == "manif":
            try:
                parsed = parse_code(text, where)
            except DataFileError:
                parsed = None  # the Neoplasm Table prints a site description here, not a code
            if parsed:
                codes.append((parsed[0], parsed[1], "manifestation"))
        elif tag == "cell":
            col = child.get("col", "")
            parsed = parse_code(text, f"{where} (column {col})")
            if parsed:
                codes.append((parsed[0], parsed[1], columns.get(col, f"column {col}")))
    see = _text_or_none(elem.find("see"))
    see_also = _text_or_none(elem.find("seeAlso"))
    codes.extend((c, True, None) for c in reference_codes(see or ""))
    out.append(IndexNode(source, parent, title, nonessential, see, see_also, tuple(codes)))
    me = len(out) - 1
    for child in elem.findall("term"):
        _xml_term(child, me, source, columns, out, path, here)


def _xml_title(elem: ET.Element) -> tuple[str, tuple[str, ...]]:
    parts: list[str] = [elem.text or ""]
    nonessential: list[str] = []
    for child in elem:
        if child.tag == "nemod":
            nonessential.extend(split_nonessential("".join(child.itertext())))
        elif child.tag == "diff":
            sub, more = _xml_title(child)
            parts.append(sub)
            nonessential.extend(more)
        elif child.tag in ("unc", "new"):
            parts.append("".join(child.itertext()))
        # <old> is text removed by an addendum
        parts.append(child.tail or "")
    title = " ".join("".join(parts).split())
    return title or _modifier_title(tuple(nonessential)), tuple(nonessential)


def _modifier_title(nonessential: tuple[str, ...]) -> str:
    # A line printed as modifiers only ("Disorder > persistent > (somatoform) F45.41").
    return " ".join(f"({m})" for m in nonessential)


def _text_or_none(elem: ET.Element | None) -> str | None:
    if elem is None:
        return None
    text = " ".join("".join(elem.itertext()).split())
    return text or None


# -- flattened CSV ------------------------------------------------------------------------------
def read_index_csv(path: Path, source: str) -> tuple[list[IndexNode], str]:
    """Read a flattened index CSV: the main index, the External Cause Index or one of the tables.

    The header decides the layout: ``Code`` for an index, the neoplasm or drug column names for a
    table. The tree follows from ``Level`` (0 = main term) and row order.

    Args:
        path: the CSV file.
        source: the source label its lines get.

    Returns:
        ``(lines, fiscal year from the file name)``.

    Raises:
        DataFileError: missing file, unknown header, a bad level jump or a bad code, naming the
            line.
    """
    path = Path(path)
    if source not in SOURCES:
        raise ValueError(f"unknown index source {source!r}")
    if not path.is_file():
        raise DataFileError(f"{path}: no such index file")
    out: list[IndexNode] = []
    stack: list[int] = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        table_columns = {k: v for k, v in {**NEOPLASM_CSV_COLUMNS, **DRUG_CSV_COLUMNS}.items() if k in header}
        required = {"Level", "Term"} | ({"Code"} if not table_columns else set())
        if not required <= set(header):
            raise DataFileError(f"{path}: line 1: header lacks {sorted(required - set(header))}")
        known = set(_INDEX_CSV_FIELDS) | set(table_columns)
        if set(header) - known:
            raise DataFileError(f"{path}: line 1: unknown columns {sorted(set(header) - known)}")
        for row in reader:
            where = f"{path}: line {reader.line_num}"
            try:
                level = int(row["Level"])
            except (TypeError, ValueError) as exc:
                raise DataFileError(f"{where}: Level {row['Level']!r} is not a number") from exc
            if level < 0 or level > len(stack):
                raise DataFileError(f"{where}: level {level} follows level {len(stack) - 1}")
            del stack[level:]
            codes: list[tuple[str, bool, str | None]] = []
            if table_columns:
                for name, column in table_columns.items():
                    parsed = parse_code(row[name] or "", f"{where} ({name})")
                    if parsed:
                        codes.append((parsed[0], parsed[1], column))
            else:
                parsed = parse_code(row["Code"] or "", where)
                if parsed:
                    codes.append((parsed[0], parsed[1], None))
                codes.extend((c, True, None) for c in reference_codes(row.get("See") or ""))
            nonessential = split_nonessential(row.get("NonEssModif") or "")
            term = " ".join((row["Term"] or "").split()) or _modifier_title(nonessential)
            if not term:
                raise DataFileError(f"{where}: empty Term")
            node = IndexNode(
                source=source,
                parent=stack[-1] if stack else -1,
                title=term,
                nonessential=nonessential,
                see=(row.get("See") or "").strip() or None,
                see_also=(row.get("SeeAlso") or "").strip() or None,
                codes=tuple(codes),
            )
            out.append(node)
            stack.append(len(out) - 1)
    if not out:
        raise DataFileError(f"{path}: no rows")
    logger.info("read %d %s index lines from %s", len(out), source, path.name)
    return out, _year(path.name)


def _year(name: str) -> str:
    match = re.search(r"(?<![0-9])(20[0-9]{2})(?![0-9])", name)
    return match.group(1) if match else ""


# -- finding and reading everything --------------------------------------------------------------
def find_index_files(data_dir: Path) -> dict[str, Path]:
    """Locate each index source under ``data_dir/icd10cm``, preferring the CDC XML over the CSV.

    Args:
        data_dir: the reference data folder.

    Returns:
        source -> file, for the sources found.
    """
    folder = Path(data_dir) / "icd10cm"
    if not folder.is_dir():
        return {}
    xml = sorted(p for p in folder.rglob("*.xml") if "tabular" not in p.name.lower())
    csvs = sorted(folder.rglob("*.csv"))

    def pick(xml_test: Any, csv_test: Any) -> Path | None:
        found = [p for p in xml if xml_test(p.name.lower())] or [p for p in csvs if csv_test(p.name.lower())]
        return found[-1] if found else None

    chosen = {
        "index": pick(
            lambda n: "index" in n and "eindex" not in n,
            lambda n: n.endswith("_index.csv") and "external" not in n,
        ),
        "external": pick(lambda n: "eindex" in n, lambda n: "externalindex" in n),
        "neoplasm": pick(lambda n: "neoplasm" in n and "drug" not in n, lambda n: "neoplasm" in n),
        "drug": pick(lambda n: "drug" in n and "neoplasm" not in n, lambda n: "drug" in n),
    }
    return {k: v for k, v in chosen.items() if v is not None}


def read_index_file(path: Path, source: str) -> tuple[list[IndexNode], str]:
    """Read one index source from XML or CSV, chosen by extension.

    Args:
        path: a ``.xml`` (CDC) or ``.csv`` (flattened) file.
        source: the source label its lines get.

    Returns:
        ``(lines, fiscal year)`` as :func:`read_index_xml` and :func:`read_index_csv` return.

    Raises:
        DataFileError: another extension, or a bad file.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".xml":
        return read_index_xml(path, source)
    if suffix == ".csv":
        return read_index_csv(path, source)
    raise DataFileError(f"{path}: not an index file (expected .xml or .csv)")


def read_alphabetic_index(files: dict[str, Path]) -> AlphabeticIndex:
    """Read several index sources and resolve their cross references.

    Args:
        files: source -> file (see :func:`find_index_files`).

    Returns:
        The combined index, references resolved.

    Raises:
        DataFileError: a file is unreadable.
    """
    index = AlphabeticIndex()
    for source in SOURCES:
        if source in files:
            nodes, version = read_index_file(files[source], source)
            index.add(source, nodes, version, Path(files[source]).name)
    counts = index.resolve_references()
    logger.info("index references: %d resolved, %d unresolved", counts["resolved"], counts["unresolved"])
    return index


def iter_codes(index: AlphabeticIndex) -> Iterator[str]:
    """Yield every code an index gives.

    Args:
        index: the index.

    Yields:
        Canonical codes, with repeats.
    """
    for node in index.nodes:
        for code, _, _ in node.codes:
            yield code
