"""The note-level commands: ``annotate``, ``suggest``, ``train``, ``evaluate``.

Each handler imports the layer it drives when it runs, not when the parser is built: those
layers load spaCy, medspaCy and scikit-learn (seconds), which ``codesuggest --help`` and
``codes lookup`` must not pay for.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.commands import EXIT_OK, CommandRegistry, print_json, read_text_arg
from pipeline.evaluate import format_report, write_errors
from pipeline.locations import default_kb_dir, default_model_dir
from pipeline.manifest import verify_manifest


def register(registry: CommandRegistry) -> None:
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
    # Imported here, not at the top: start-up time (see the module docstring).
    from pipeline.nlp.annotate import annotate_text, format_annotations
    from pipeline.nlp.assembly import load_pipeline
    from pipeline.ranking.artefact import MODEL_KIND

    text = read_text_arg(args.file)
    model_dir = args.model or default_model_dir()
    verify_manifest(model_dir, kind=MODEL_KIND)
    nlp = load_pipeline(model_dir / "nlp")
    document = annotate_text(nlp, text, top=args.top)
    if args.json:
        print_json(document)
    else:
        sys.stdout.write(format_annotations(document))
    return EXIT_OK


def _suggest(args: argparse.Namespace) -> int:
    # Imported here, not at the top: start-up time (see the module docstring).
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
    # Imported here, not at the top: start-up time (see the module docstring).
    from pipeline.encounter.coder import encounter_rule_files
    from pipeline.ranking.artefact import TrainParams
    from pipeline.ranking.training import notes_from_corpus, train_model

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
        rule_files=encounter_rule_files(),
    )
    dev_fig = manifest.metrics.get("dev", {})
    summary = f"wrote {args.out} ({manifest.name} {manifest.version}, {len(train)} training notes"
    if dev_fig:
        summary += f"; dev MAP {dev_fig['map']:.3f}, micro-F1 {dev_fig['micro_f1']:.3f}"
    sys.stdout.write(summary + ")\n")
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    # Imported here, not at the top: start-up time (see the module docstring).
    from pipeline.runner import evaluate_corpus

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
