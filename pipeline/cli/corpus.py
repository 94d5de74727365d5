"""``codesuggest corpus ...``: import, validate and summarise corpora.

Commands:
    ``corpus import-codiesp DIR --out FILE.jsonl [--kb DIR | --no-check] [--json]``
    ``corpus import-csv FILE.csv --out FILE.jsonl --text-column C --codes-column C [...]``
    ``corpus validate FILE.jsonl [--json]`` (exit 2 when any line is bad)
    ``corpus stats FILE.jsonl [--top N] [--json]``
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from corpora.codiesp import CodeChecker, CodeListChecker, KnowledgeBaseChecker, import_codiesp
from corpora.csv_import import import_csv
from corpora.format import corpus_stats, read_corpus, validate_corpus, write_corpus
from pipeline.commands import EXIT_ERROR, CommandRegistry, print_json
from pipeline.errors import ArtefactError
from pipeline.locations import default_kb_dir

logger = logging.getLogger(__name__)

GROUP = "corpus"


def register(registry: CommandRegistry) -> None:
    """Add the ``corpus`` commands to the CLI.

    Args:
        registry: the CLI's command registry.
    """
    registry.group(GROUP, help="corpus format: import, validate, stats")

    p = registry.command(
        "import-codiesp",
        _import_codiesp,
        help="convert a CodiEsp split (text_files_en/, *D.tsv, optional *P.tsv) to JSONL",
        group=GROUP,
    )
    p.add_argument("directory", type=Path, help="split folder, e.g. ../shared/data/codiesp/dev")
    p.add_argument("--out", type=Path, required=True, help="JSONL corpus to write")
    check = p.add_mutually_exclusive_group()
    check.add_argument(
        "--kb",
        type=Path,
        default=None,
        help="knowledge base to check ICD-10-CM codes against (default: models/kb when built, "
        "else the ICD-10-CM code list packaged with simple-icd-10-cm)",
    )
    check.add_argument("--no-check", action="store_true", help="do not check codes against ICD-10-CM FY2026")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON document")

    p = registry.command(
        "import-csv",
        _import_csv,
        help="convert a CSV of notes and codes to a JSONL corpus",
        group=GROUP,
    )
    p.add_argument("csv_file", type=Path, help="CSV file with a header row (UTF-8)")
    p.add_argument("--out", type=Path, required=True, help="JSONL corpus to write")
    p.add_argument("--text-column", required=True, help="column holding the note text")
    p.add_argument("--codes-column", required=True, help="column holding the codes")
    p.add_argument("--id-column", default=None, help="column holding the note id (default: file-line)")
    p.add_argument(
        "--system",
        default="ICD10CM",
        choices=("ICD10CM", "ICD10PCS", "CPT", "HCPCS"),
        help="system of codes written without a SYSTEM: prefix (default ICD10CM)",
    )
    p.add_argument("--separator", default=None, help="separator between codes (default: ';' or '|')")
    p.add_argument("--setting-column", default=None, help="column holding inpatient/outpatient")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON document")

    p = registry.command(
        "validate",
        _validate,
        help="check a JSONL corpus and print every bad line (exit 2 if any)",
        group=GROUP,
    )
    p.add_argument("corpus", type=Path, help="JSONL corpus")
    p.add_argument("--json", action="store_true", help="print the problems as one JSON document")

    p = registry.command(
        "stats",
        _stats,
        help="summarise a JSONL corpus: notes, codes per note, systems, most frequent codes",
        group=GROUP,
    )
    p.add_argument("corpus", type=Path, help="JSONL corpus")
    p.add_argument("--top", type=_positive_int, default=20, help="how many frequent codes (20)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON document")


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return number


def make_checker(kb_dir: Path | None, check: bool = True) -> CodeChecker | None:
    """Choose how ICD-10-CM codes are checked.

    Args:
        kb_dir: a knowledge-base artefact folder. When given it must load; when None, the default
            artefact is used if it exists, else the packaged code list.
        check: False disables checking (returns None).

    Returns:
        A checker, or None when checking is off.

    Raises:
        ArtefactError: ``kb_dir`` was given but cannot be loaded.
    """
    if not check:
        return None
    explicit = kb_dir is not None
    folder = Path(kb_dir) if kb_dir is not None else default_kb_dir()
    if explicit or (folder / "manifest.json").is_file():
        # Imported here, not at the top: the knowledge base's modules would cost every command start-up time.
        from pipeline.kb.store import KnowledgeBase

        try:
            kb = KnowledgeBase.load(folder)
        except ArtefactError:
            if explicit:
                raise
            logger.warning("knowledge base %s unusable; using the packaged code list", folder)
            return CodeListChecker()
        return KnowledgeBaseChecker(kb, folder)
    logger.info("no knowledge base at %s; checking codes against the packaged code list", folder)
    return CodeListChecker()


def _import_codiesp(args: argparse.Namespace) -> int:
    checker = make_checker(args.kb, check=not args.no_check)
    with tqdm(desc="importing", unit="note", disable=None, file=sys.stderr, leave=False) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(1)

        notes, report = import_codiesp(args.directory, checker=checker, progress=progress)
    write_corpus(args.out, notes)
    summary = {"out": str(args.out), **report.to_dict()}
    if args.json:
        print_json(summary)
        return 0
    out = sys.stdout
    out.write(f"{report.notes} notes ({report.split}) -> {args.out}\n")
    systems = ", ".join(f"{k} {v}" for k, v in report.codes_per_system.items()) or "none"
    out.write(f"codes: {systems}\n")
    out.write(f"checked against: {report.checked_against}\n")
    rows = sum(report.unknown_codes.values())
    out.write(f"unknown ICD-10-CM codes (kept, flagged): {rows} rows, {len(report.unknown_codes)} codes\n")
    for code, count in report.unknown_codes.items():
        out.write(f"  {code}\t{count}\n")
    rows = sum(report.nonbillable_codes.values())
    distinct = len(report.nonbillable_codes)
    out.write(f"non-billable ICD-10-CM codes (kept, flagged): {rows} rows, {distinct} codes\n")
    if report.missing_text:
        out.write(f"doc ids without a text file (skipped): {', '.join(report.missing_text)}\n")
    if report.without_codes:
        out.write(f"texts without codes (kept, no codes): {', '.join(report.without_codes)}\n")
    if report.duplicate_rows:
        out.write(f"repeated TSV rows (counted once): {report.duplicate_rows}\n")
    return 0


def _import_csv(args: argparse.Namespace) -> int:
    notes, report = import_csv(
        args.csv_file,
        text_column=args.text_column,
        codes_column=args.codes_column,
        id_column=args.id_column,
        system=args.system,
        separator=args.separator,
        setting_column=args.setting_column,
    )
    write_corpus(args.out, notes)
    if args.json:
        print_json({"out": str(args.out), **report.to_dict()})
        return 0
    systems = ", ".join(f"{k} {v}" for k, v in report.codes_per_system.items()) or "none"
    sys.stdout.write(f"{report.notes} notes -> {args.out}\ncodes: {systems}\n")
    if report.rows_without_codes:
        lines = ", ".join(str(n) for n in report.rows_without_codes)
        sys.stdout.write(f"rows without codes (kept): lines {lines}\n")
    return 0


def _validate(args: argparse.Namespace) -> int:
    problems = validate_corpus(args.corpus)
    if args.json:
        document: dict[str, Any] = {
            "corpus": str(args.corpus),
            "valid": not problems,
            "problems": [{"line": n, "message": m} for n, m in problems],
        }
        print_json(document)
    elif problems:
        for number, message in problems:
            sys.stdout.write(f"{args.corpus}:{number}: {message}\n")
        sys.stderr.write(f"codesuggest: error: {args.corpus}: {len(problems)} problem(s)\n")
    else:
        sys.stdout.write(f"{args.corpus}: valid\n")
    return EXIT_ERROR if problems else 0


def _stats(args: argparse.Namespace) -> int:
    stats = corpus_stats(read_corpus(args.corpus), top=args.top)
    if args.json:
        print_json({"corpus": str(args.corpus), **stats})
        return 0
    out = sys.stdout
    per = stats["codes_per_note"]
    out.write(f"{args.corpus}: {stats['notes']} notes, {stats['codes']} codes ")
    out.write(f"({stats['distinct_codes']} distinct), {stats['notes_without_codes']} without codes\n")
    out.write(f"codes per note: mean {per['mean']}, median {per['median']}, min {per['min']}, max {per['max']}\n")
    for system, info in stats["systems"].items():
        codes, distinct, in_notes = info["codes"], info["distinct"], info["notes"]
        out.write(f"  {system}: {codes} codes, {distinct} distinct, in {in_notes} notes\n")
    settings = ", ".join(f"{k} {v}" for k, v in stats["settings"].items())
    out.write(f"settings: {settings}\n")
    out.write(f"top {len(stats['top_codes'])} codes (notes):\n")
    for row in stats["top_codes"]:
        out.write(f"  {row['system']}\t{row['code']}\t{row['notes']}\n")
    return 0
