"""``codesuggest codes ...`` (lookup, search, stats, complete) and ``codesuggest kb build``.

Every command reads the knowledge-base artefact (``--kb``, default ``models/kb``) except
``kb build``, which writes it. Bad input (an unknown or malformed code, a missing KB) is a domain
error: the CLI prints one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.commands import CommandRegistry, print_json
from pipeline.errors import InputError
from pipeline.locations import default_data_dir, default_kb_dir

# The knowledge base's modules are imported by the handlers that use them, not here: the CLI
# builds its parser from this module, and every command would pay for them at start-up.
if TYPE_CHECKING:
    from pipeline.kb.model import CodeRecord
    from pipeline.kb.store import KnowledgeBase

NOTE_KINDS = ("includes", "excludes1", "excludes2", "code_first", "use_additional", "code_also")
_NOTE_LABELS = {
    "includes": "Includes",
    "excludes1": "Excludes1",
    "excludes2": "Excludes2",
    "code_first": "Code first",
    "use_additional": "Use additional code",
    "code_also": "Code also",
}


def register(registry: CommandRegistry) -> None:
    """Add the ``codes`` and ``kb`` commands to the CLI.

    Args:
        registry: the CLI's command registry.
    """
    registry.group("codes", help="look up, search and complete codes in the knowledge base")
    registry.group("kb", help="build the code knowledge base")

    p = registry.command("lookup", _lookup, help="show everything known about one code", group="codes")
    p.add_argument("code", help="a code as typed: S93.401A, s93401a, L1906, 99213")
    _common(p)

    p = registry.command("search", _search, help="find codes by words", group="codes")
    p.add_argument("text", help='words to look for, e.g. "sprain of right ankle"')
    p.add_argument("--system", type=str.upper, choices=["ICD10CM", "HCPCS", "CPT"], default=None)
    p.add_argument("--limit", type=_positive_int, default=20, help="number of results (default 20)")
    _common(p)

    p = registry.command("stats", _stats, help="code counts and versions", group="codes")
    _common(p)

    p = registry.command("complete", _complete, help="add a 7th character (with X placeholders)", group="codes")
    p.add_argument("code", help="an ICD-10-CM code that needs a 7th character, e.g. T14.90")
    p.add_argument("--seventh", required=True, help="the 7th character, e.g. A")
    _common(p)

    p = registry.command("build", _build, help="build the knowledge base from the reference data", group="kb")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"reference data folder (default: {default_data_dir()})",
    )
    p.add_argument(
        "--no-data",
        action="store_true",
        help="build ICD-10-CM from the tabular packaged with simple-icd-10-cm only (no index, no HCPCS)",
    )
    p.add_argument(
        "--cpt-file",
        type=Path,
        default=None,
        help="licensed CPT file (code<TAB>descriptor); default: the project's starter lexicon",
    )
    p.add_argument("--out", type=Path, default=None, help=f"artefact folder (default: {default_kb_dir()})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--kb", type=Path, default=None, help=f"knowledge-base folder (default: {default_kb_dir()})")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def load_kb(folder: Path | None) -> KnowledgeBase:
    """Load the knowledge base the CLI points at (``--kb``, else ``models/kb``).

    Args:
        folder: the artefact folder, or None for the default.

    Returns:
        The knowledge base.

    Raises:
        ArtefactError: the folder holds no (valid) knowledge base; the message says how to
            build one.
    """
    from pipeline.kb.store import KnowledgeBase  # start-up time: see the note at the imports

    return KnowledgeBase.load(folder if folder is not None else default_kb_dir())


# -- codes lookup --------------------------------------------------------------------------------
def describe(kb: KnowledgeBase, rec: CodeRecord) -> dict[str, Any]:
    """Return everything the knowledge base knows about a record, as a JSON-ready dict.

    Notes printed on ancestors (and the block and chapter) apply to the code too; each note says
    where it is printed (``from``).

    Args:
        kb: the knowledge base.
        rec: the record.

    Returns:
        The description (see ``codes lookup --json``).
    """
    out: dict[str, Any] = {
        "code": rec.code,
        "system": rec.system,
        "title": rec.title,
        "billable": rec.billable,
        "version": kb.versions.get(rec.system, ""),
    }
    if rec.system != "ICD10CM":
        out.update(
            {
                "section": rec.chapter,
                "range": rec.block,
                "terminated": rec.terminated,
                "synonyms": list(rec.synonyms),
                "meta": dict(rec.meta),
            }
        )
        return out
    chapter = kb.header(f"chapter:{rec.chapter}") if rec.chapter else None
    block = kb.header(rec.block) if rec.block else None
    ancestors = kb.ancestors(rec.code)
    owners: list[Any] = [rec, *ancestors, *(h for h in (block, chapter) if h is not None)]
    notes: dict[str, list[dict[str, str]]] = {}
    for kind in NOTE_KINDS:
        found = [{"from": _owner_label(owner), "note": note} for owner in owners for note in getattr(owner, kind)]
        if found:
            notes[kind] = found
    other = [n for n in (rec.meta.get("notes") or "").split("\n") if n]
    out.update(
        {
            "chapter": {"number": rec.chapter, "title": chapter.title if chapter else None},
            "block": {"range": rec.block, "title": block.title if block else None},
            "parents": [{"code": a.code, "title": a.title} for a in ancestors],
            "inclusion_terms": list(rec.inclusion_terms),
            "notes": notes,
            "other_notes": other,
            "seventh": dict(rec.seventh) if rec.seventh is not None else None,
            "placeholder": rec.placeholder,
            "children": [c.code for c in kb.children(rec.code)],
            "index_paths": [
                {
                    "path": list(e.path),
                    "code": e.code,
                    "incomplete": e.incomplete,
                    "source": e.source,
                    "column": e.column,
                }
                for e in kb.index_paths_for(rec.code)
            ],
        }
    )
    return out


def _owner_label(owner: Any) -> str:
    code = str(owner.code)
    return f"chapter {code.split(':', 1)[1]}" if code.startswith("chapter:") else code


def _lookup(args: argparse.Namespace) -> int:
    kb = load_kb(args.kb)
    rec = kb.lookup(args.code)
    info = describe(kb, rec)
    if args.json:
        print_json(info)
        return 0
    out = sys.stdout
    status = "billable" if rec.billable else "not billable"
    if rec.terminated:
        status = "terminated"
    out.write(f"{rec.code}  [{rec.system} {info['version']}]  {status}\n  {rec.title}\n")
    if rec.system != "ICD10CM":
        if info["section"] or info["range"]:
            out.write(f"  section: {info['section'] or '-'}  range: {info['range'] or '-'}\n")
        if info["synonyms"]:
            out.write(f"  signal phrases: {'; '.join(info['synonyms'])}\n")
        return 0
    chapter, block = info["chapter"], info["block"]
    out.write(f"  chapter {chapter['number']}: {chapter['title']}\n")
    out.write(f"  block {block['range']}: {block['title']}\n")
    for parent in info["parents"]:
        out.write(f"  parent {parent['code']}: {parent['title']}\n")
    for term in info["inclusion_terms"]:
        out.write(f"  inclusion term: {term}\n")
    for kind, found in info["notes"].items():
        for item in found:
            out.write(f"  {_NOTE_LABELS[kind]} ({item['from']}): {item['note']}\n")
    for note in info["other_notes"]:
        out.write(f"  note: {note}\n")
    if info["seventh"]:
        chars = ", ".join(f"{k} = {v}" for k, v in info["seventh"].items())
        out.write(f"  7th characters: {chars}\n")
    if info["children"] and not rec.billable:
        shown = ", ".join(info["children"][:12]) + (" ..." if len(info["children"]) > 12 else "")
        out.write(f"  children: {shown}\n")
    for entry in info["index_paths"][:20]:
        dash = "-" if entry["incomplete"] else ""
        column = f" [{entry['column']}]" if entry["column"] else ""
        path = " > ".join(entry["path"])
        out.write(f"  index ({entry['source']}): {path}{column} -> {entry['code']}{dash}\n")
    if len(info["index_paths"]) > 20:
        out.write(f"  ... and {len(info['index_paths']) - 20} more index entries (see --json)\n")
    return 0


# -- codes search --------------------------------------------------------------------------------
def _search(args: argparse.Namespace) -> int:
    if not args.text.strip():
        raise InputError("search text is empty")
    kb = load_kb(args.kb)
    started = time.perf_counter()
    hits = kb.search(args.text, system=args.system, limit=args.limit)
    elapsed = time.perf_counter() - started
    if args.json:
        print_json(
            {
                "query": args.text,
                "system": args.system,
                "hits": [dataclasses.asdict(h) for h in hits],
            }
        )
        return 0
    if not hits:
        sys.stdout.write("no matching codes\n")
        return 0
    for hit in hits:
        mark = " " if hit.billable else "*"
        sys.stdout.write(
            f"{hit.code:<9}{mark} {hit.system:<7} {hit.score:7.2f}  {hit.title}\n{'':19}{hit.source}: {hit.matched}\n"
        )
    built = kb.search_build_seconds or 0.0
    sys.stdout.write(
        f"({len(hits)} results; search {(elapsed - built) * 1000:.0f} ms after building the "
        f"search index in {built:.1f} s; * = not billable)\n"
    )
    return 0


# -- codes stats ---------------------------------------------------------------------------------
def _stats(args: argparse.Namespace) -> int:
    kb = load_kb(args.kb)
    stats = kb.stats()
    if args.json:
        print_json(stats)
        return 0
    for system in ("ICD10CM", "HCPCS", "CPT"):
        item = stats[system]
        sys.stdout.write(
            f"{system:<8} {item['version']:<32} {item['codes']:>7,} codes  {item['billable']:>7,} billable\n"
        )
    index = stats.get("ICD10CM_INDEX")
    if index:
        sources = ", ".join(f"{k} {v:,}" for k, v in index["by_source"].items())
        sys.stdout.write(
            f"index    {index['version']:<32} {index['entries']:>7,} entries ({sources}); "
            f"{index['codes_not_in_tabular']} codes not in the tabular\n"
        )
    sys.stdout.write(f"modifiers {len(kb.modifiers)}\n")
    return 0


# -- codes complete ------------------------------------------------------------------------------
def _complete(args: argparse.Namespace) -> int:
    kb = load_kb(args.kb)
    code = kb.complete(args.code, args.seventh)
    rec = kb.lookup(code)
    if args.json:
        print_json(
            {
                "code": args.code,
                "seventh": args.seventh.strip().upper(),
                "completed": code,
                "title": rec.title,
                "billable": rec.billable,
            }
        )
        return 0
    sys.stdout.write(f"{code}  {rec.title}\n")
    return 0


# -- kb build ------------------------------------------------------------------------------------
def _build(args: argparse.Namespace) -> int:
    from pipeline.kb.build import build_knowledge_base  # start-up time: see the note at the imports

    if args.no_data and args.data_dir is not None:
        raise InputError("--no-data and --data-dir exclude each other")
    data_dir = None if args.no_data else (args.data_dir or default_data_dir())
    out = args.out if args.out is not None else default_kb_dir()
    started = time.perf_counter()
    kb = build_knowledge_base(data_dir, cpt_file=args.cpt_file, progress=not args.no_progress)
    manifest = kb.save(out)
    size = sum((out / rel).stat().st_size for rel in manifest.files) + (out / "manifest.json").stat().st_size
    stats = kb.stats()
    icd, hcpcs, cpt = stats["ICD10CM"], stats["HCPCS"], stats["CPT"]
    index = stats.get("ICD10CM_INDEX", {})
    elapsed = time.perf_counter() - started
    sys.stdout.write(
        f"built {out}: ICD-10-CM {icd['version']} {icd['codes']:,} codes "
        f"({icd['billable']:,} billable), index {index.get('entries', 0):,} entries, "
        f"HCPCS {hcpcs['version'] or '-'} {hcpcs['codes']:,} codes, "
        f"CPT {cpt['version']} {cpt['codes']:,} codes, {len(kb.modifiers)} modifiers; "
        f"{size / 2**20:.1f} MB in {elapsed:.1f} s\n"
    )
    return 0
