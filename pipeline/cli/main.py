"""The ``codesuggest`` command line.

Commands are registered by small ``register(registry)`` functions that live beside the code they
drive (``pipeline.cli.kb``, ``pipeline.cli.corpus``...) and by other installed packages through the
``codesuggest.commands`` entry-point group (the service contributes ``serve`` and ``keys`` that
way, so pipeline/ never imports service/). Handlers import heavy libraries lazily so that
``codesuggest --help`` and ``codes lookup`` start fast.

Every expected failure is a :class:`~pipeline.errors.CodesuggestError`: it is printed as one line
on stderr and the process exits with code 2; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.errors import CodesuggestError

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 2

Handler = Callable[[argparse.Namespace], int | None]

# Command modules shipped with this package: "module:function" taking a CommandRegistry.
BUILTIN_COMMAND_MODULES = (
    "pipeline.cli.kb:register",
    "pipeline.kb.sources.fetch:register",
    "pipeline.cli.corpus:register",
    "pipeline.cli.main:register_core",
)


class CommandRegistry:
    """Hands out argparse sub-parsers so that several modules can add commands and groups.

    Args:
        root: the top-level sub-parsers action.
    """

    def __init__(self, root: argparse._SubParsersAction) -> None:
        self._root = root
        self._groups: dict[str, argparse._SubParsersAction] = {}

    def command(self, name: str, handler: Handler, help: str, group: str | None = None) -> argparse.ArgumentParser:
        """Add ``codesuggest [group] name``; the returned parser takes its arguments.

        Args:
            name: command name.
            handler: called with the parsed namespace; returns an exit code or None for 0.
            help: one-line help.
            group: optional group (``codes``, ``corpus``, ``kb``...), created on first use.

        Returns:
            The command's argument parser.
        """
        parent = self.group(group) if group else self._root
        parser = parent.add_parser(name, help=help, description=help)
        parser.set_defaults(handler=handler)
        return parser

    def group(self, name: str, help: str | None = None) -> argparse._SubParsersAction:
        """Return (creating on first use) the sub-parsers action of a command group."""
        if name not in self._groups:
            parser = self._root.add_parser(name, help=help or f"{name} commands")
            parser.set_defaults(handler=_group_help(parser))
            self._groups[name] = parser.add_subparsers(title=f"{name} commands", metavar="COMMAND")
        return self._groups[name]


def _group_help(parser: argparse.ArgumentParser) -> Handler:
    def show(_: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_ERROR

    return show


def print_json(document: Any) -> None:
    """Print one JSON document on stdout (the ``--json`` contract of every command)."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_text_arg(source: str) -> str:
    """Read a note from a file path or ``-`` (stdin), as UTF-8 with a clear error otherwise.

    Args:
        source: a path, or ``-`` for standard input.

    Returns:
        The text.

    Raises:
        InputError: the file is missing or not UTF-8 text.
    """
    from pipeline.errors import InputError

    if source == "-":
        data = sys.stdin.buffer.read()
        name = "standard input"
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{source}: no such file")
        data = path.read_bytes()
        name = source
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="codesuggest",
        description="Suggest ICD-10-CM, CPT and HCPCS codes for clinical notes, with evidence.",
    )
    parser.add_argument("--version", action="version", version=f"codesuggest {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    registry = CommandRegistry(sub)
    for spec in BUILTIN_COMMAND_MODULES:
        _load_register(spec)(registry)
    for entry in metadata.entry_points(group="codesuggest.commands"):
        try:
            register = entry.load()
        except ImportError as exc:  # an optional extra that is not installed
            logger.debug("command plugin %s unavailable: %s", entry.name, exc)
            continue
        register(registry)
    return parser


def _load_register(spec: str) -> Callable[[CommandRegistry], None]:
    module_name, func = spec.split(":")
    return getattr(importlib.import_module(module_name), func)


def register_core(registry: CommandRegistry) -> None:
    """Register the note-level commands: annotate, suggest, train, evaluate."""
    p = registry.command("annotate", _annotate, "Show the mentions found in a note, their context and candidates")
    p.add_argument("file", help="note file, or - for standard input")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--model", type=Path, default=None, help="model folder (default: models/default)")
    p.add_argument("--top", type=int, default=5, help="candidates shown per mention")

    p = registry.command("suggest", _suggest, "Suggest ranked codes with evidence for a note")
    p.add_argument("file", help="note file, or - for standard input")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--setting", choices=["outpatient", "inpatient"], default="outpatient")
    p.add_argument("--top-k", type=_positive_int, default=None, help="at most N suggestions")
    p.add_argument("--min-score", type=float, default=None, help="leave out suggestions scoring below this")
    p.add_argument(
        "--system",
        action="append",
        choices=["ICD10CM", "CPT", "HCPCS"],
        default=None,
        help="code systems to show (repeatable; default all)",
    )
    p.add_argument("--model", type=Path, default=None, help="model folder (default: models/default)")
    p.add_argument("--kb", type=Path, default=None, help="knowledge-base folder (default: models/kb)")

    p = registry.command("train", _train, "Train a suggestion model on a corpus (JSONL)")
    p.add_argument("--corpus", type=Path, required=True, help="training corpus (JSONL)")
    p.add_argument("--dev", type=Path, default=None, help="dev corpus for the threshold and figures")
    p.add_argument("--out", type=Path, required=True, help="model folder to write, e.g. models/NAME")
    p.add_argument("--kb", type=Path, default=None, help="knowledge-base folder (default: models/kb)")
    p.add_argument("--name", default=None, help="model name (default: the --out folder name)")
    p.add_argument("--version", dest="model_version", default="1.0.0", help="model version")
    p.add_argument(
        "--pipeline-from",
        type=Path,
        default=None,
        help="reuse the spaCy pipeline of this model instead of building it from the KB",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = registry.command("evaluate", _evaluate, "Evaluate a model on a coded corpus (JSONL)")
    p.add_argument("--corpus", type=Path, required=True, help="gold corpus (JSONL)")
    p.add_argument("--model", type=Path, default=None, help="model folder (default: models/default)")
    p.add_argument("--kb", type=Path, default=None, help="knowledge-base folder (default: models/kb)")
    p.add_argument("--system", choices=["ICD10CM", "CPT", "HCPCS"], default="ICD10CM")
    p.add_argument(
        "--encounter",
        action="store_true",
        help="score the final encounter code sets (all systems, modifiers) instead of the ranking",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--errors", type=Path, default=None, help="write every missed and wrong code to this CSV")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _annotate(args: argparse.Namespace) -> int:
    from pipeline.locations import default_model_dir
    from pipeline.manifest import verify_manifest
    from pipeline.nlp.annotate import annotate_text, format_annotations
    from pipeline.nlp.assembly import load_pipeline

    text = read_text_arg(args.file)
    model_dir = args.model or default_model_dir()
    verify_manifest(model_dir, kind="model")
    nlp = load_pipeline(model_dir / "nlp")
    document = annotate_text(nlp, text, top=args.top)
    if args.json:
        print_json(document)
    else:
        sys.stdout.write(format_annotations(document))
    return EXIT_OK


def _suggest(args: argparse.Namespace) -> int:
    from pipeline.suggest import Suggester, format_result

    text = read_text_arg(args.file)
    suggester = Suggester.load(args.model, args.kb)
    result = suggester.suggest(
        text,
        setting=args.setting,
        code_systems=args.system,
        top_k=args.top_k,
        min_score=args.min_score,
        note_id=None if args.file == "-" else Path(args.file).name,
    )
    if args.json:
        print_json(result.to_dict())
    else:
        sys.stdout.write(format_result(result))
    return EXIT_OK


def _train(args: argparse.Namespace) -> int:
    from pipeline.locations import default_kb_dir
    from pipeline.ranking.training import TrainParams, notes_from_corpus, train_model

    train = notes_from_corpus(args.corpus)
    dev = notes_from_corpus(args.dev) if args.dev else None
    params = TrainParams(name=args.name or args.out.name, version=args.model_version)
    refs = [args.corpus] + ([args.dev] if args.dev else [])
    manifest = train_model(
        train,
        dev,
        args.kb or default_kb_dir(),
        args.out,
        params,
        refs,
        progress=not args.no_progress,
        pipeline_from=args.pipeline_from,
    )
    dev_fig = manifest.metrics.get("dev", {})
    summary = f"wrote {args.out} ({manifest.name} {manifest.version}, {len(train)} training notes"
    if dev_fig:
        summary += f"; dev MAP {dev_fig['map']:.3f}, micro-F1 {dev_fig['micro_f1']:.3f}"
    sys.stdout.write(summary + ")\n")
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    from pipeline.evaluate import evaluate_corpus, format_report, write_errors

    report, predictions = evaluate_corpus(
        args.corpus,
        model_dir=args.model,
        kb_dir=args.kb,
        system=args.system,
        encounter=args.encounter,
        progress=not args.no_progress,
    )
    if args.errors:
        report["errors_written"] = write_errors(args.errors, predictions)
    if args.json:
        print_json(report)
    else:
        sys.stdout.write(format_report(report))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        code = handler(args)
    except CodesuggestError as exc:
        sys.stderr.write(f"codesuggest: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("codesuggest: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    return EXIT_OK if code is None else code


if __name__ == "__main__":
    sys.exit(main())
