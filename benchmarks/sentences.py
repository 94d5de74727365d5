"""Measure sentence splitters and the cost of the clinical-context components.

Compares ``cs_sentences`` with medspaCy's PyRuSH (``medspacy_pyrush``) and spaCy's rule-based
``sentencizer`` on the CodiEsp dev notes (one sentence a line in the gold files):

- speed: milliseconds a note for the splitter alone (tokenization excluded);
- agreement with the gold line breaks, boundary precision / recall / F1, on the notes as they
  are and on the notes with every line joined by a space ("flattened", which tests the
  punctuation rules: some gold lines hold two sentences, so precision there is a lower bound),
  also without the stray "1." lines of the CodiEsp translation ("flattened_no_markers");
- exact splits of a few hand-written multi-sentence clinical paragraphs.

Then it times ``cs_sentences``, ``cs_sections``, ``cs_context`` and ``cs_attributes`` a note,
on the CodiEsp notes with synthetic mention spans (a two-token mention every eighth token), so
that it does not depend on the knowledge base.

Usage::

    python -m benchmarks.sentences --data-dir ../shared/data [--limit N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import CodesuggestError, DataFileError
from pipeline.locations import default_data_dir

logger = logging.getLogger(__name__)

CODIESP_DEV = Path("codiesp") / "dev" / "text_files_en"

# Hand-written clinical paragraphs (made up, no PHI) and their sentences.
PARAGRAPHS: tuple[tuple[str, ...], ...] = (
    (
        "Pt is a 45 y.o. male seen by Dr. Smith today.",
        "He reports R ankle pain after a fall, approx. 2 hrs ago.",
        "Denies LOC; no head injury.",
    ),
    (
        "Ibuprofen 600 mg p.o. t.i.d. p.r.n. pain was started.",
        "X-ray of the ankle showed a 3.5 cm soft tissue swelling, i.e. no fracture.",
        "Follow up in 2 wks.",
    ),
    (
        "HPI: 62 yo F with chest pain.",
        "ASSESSMENT/PLAN: Atypical chest pain, likely musculoskeletal.",
    ),
    (
        "Temp 38.5 °C, HR 110.",
        "Ménière's disease was considered vs. labyrinthitis.",
        "Dr. Jones agreed at 3 p.m. on rounds.",
    ),
    ("Was the fracture displaced?", "No.", "It was a nondisplaced fracture of the distal radius!"),
    # A numbered list inside a line: every item is a sentence.
    ("DIAGNOSES:", "1. Sprain of right ankle", "2. Abrasion of left knee"),
    (
        "The wound measured 2.5 cm.",
        "It was closed with 3 sutures, e.g. nylon.",
        "Dressing applied.",
    ),
    ("PATIENT DENIES FEVER OR CHILLS.", "NO NAUSEA.", "SEEN BY DR. LEE IN CLINIC."),
)


def _splitters() -> dict[str, Callable[[], Any]]:
    """Pipelines that differ only in their sentence splitter (built lazily: imports are slow, and
    each splitter's time is measured without the others loaded)."""
    import spacy

    def ours() -> Any:
        from pipeline.nlp.components import cs_sentences  # noqa: F401  (registers the factory)

        nlp = spacy.blank("en")
        nlp.add_pipe("cs_sentences")
        nlp.initialize()
        return nlp

    def pyrush() -> Any:
        import PyRuSH  # noqa: F401  (registers medspacy_pyrush)
        from loguru import logger as loguru_logger

        loguru_logger.disable("PyRuSH")  # it logs a line for every sentence otherwise
        nlp = spacy.blank("en")
        nlp.add_pipe("medspacy_pyrush")
        return nlp

    def sentencizer() -> Any:
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        return nlp

    return {"cs_sentences": ours, "medspacy_pyrush": pyrush, "sentencizer": sentencizer}


def line_starts(text: str) -> set[int]:
    """Character offsets where a non-empty line starts (the first line excluded).

    Args:
        text: a note, one sentence a line.

    Returns:
        The gold sentence-start offsets.
    """
    starts: set[int] = set()
    offset = 0
    for n, line in enumerate(text.split("\n")):
        stripped = len(line) - len(line.lstrip())
        if n and line.strip():
            starts.add(offset + stripped)
        offset += len(line) + 1
    return starts


def flatten(text: str, drop_markers: bool = False) -> tuple[str, set[int]]:
    """Join a note's lines with single spaces; return it and where the lines start in it.

    Args:
        text: a note, one sentence a line.
        drop_markers: leave out lines that are only a number and a period ("1."), an artefact
            of the CodiEsp translation (about 300 of the dev lines).

    Returns:
        ``(flattened_text, gold_starts)``.
    """
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if drop_markers:
        lines = [line for line in lines if not (line[:-1].isdigit() and line.endswith("."))]
    starts: set[int] = set()
    offset = 0
    for n, line in enumerate(lines):
        if n:
            starts.add(offset)
        offset += len(line) + 1
    return " ".join(lines), starts


def predicted_starts(doc: Any) -> set[int]:
    """Character offsets of sentence starts (first non-space token; the first sentence excluded)."""
    starts: set[int] = set()
    for n, sent in enumerate(doc.sents):
        first = next((t for t in sent if not t.is_space), None)
        if n and first is not None:
            starts.add(first.idx)
    return starts


def prf(true_positive: int, predicted: int, gold: int) -> dict[str, float]:
    """Precision, recall and F1 from counts."""
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def measure_splitter(nlp: Any, texts: Sequence[str]) -> dict[str, Any]:
    """Speed and gold-line agreement of one splitter on the notes.

    Args:
        nlp: a blank pipeline whose only component is the splitter.
        texts: the notes.

    Returns:
        ``ms_per_note`` (median and mean); ``lines``, ``flattened`` and ``flattened_no_markers``
        boundary precision / recall / F1.
    """
    from tqdm import tqdm

    name, component = nlp.pipeline[0]
    seconds: list[float] = []
    # true positives, predicted, gold
    counts = {"lines": [0, 0, 0], "flattened": [0, 0, 0], "flattened_no_markers": [0, 0, 0]}
    for text in tqdm(texts, desc=name, leave=False, disable=not sys.stderr.isatty()):
        modes = (
            ("lines", (text, line_starts(text))),
            ("flattened", flatten(text)),
            ("flattened_no_markers", flatten(text, drop_markers=True)),
        )
        for mode, (note, gold) in modes:
            doc = nlp.make_doc(note)
            started = time.perf_counter()
            doc = component(doc)
            if mode == "lines":
                seconds.append(time.perf_counter() - started)
            predicted = predicted_starts(doc)
            counts[mode][0] += len(predicted & gold)
            counts[mode][1] += len(predicted)
            counts[mode][2] += len(gold)
    return {
        "ms_per_note_median": round(statistics.median(seconds) * 1000, 3),
        "ms_per_note_mean": round(statistics.fmean(seconds) * 1000, 3),
        "lines": prf(*counts["lines"]),
        "flattened": prf(*counts["flattened"]),
        "flattened_no_markers": prf(*counts["flattened_no_markers"]),
    }


def measure_paragraphs(nlp: Any) -> dict[str, Any]:
    """How many hand-written paragraphs a splitter splits exactly right, and boundary F1."""
    exact = 0
    true_positive = predicted_total = gold_total = 0
    for sentences in PARAGRAPHS:
        text = " ".join(sentences)
        gold: set[int] = set()
        offset = 0
        for n, sentence in enumerate(sentences):
            if n:
                gold.add(offset)
            offset += len(sentence) + 1
        predicted = predicted_starts(nlp(text))
        exact += predicted == gold
        true_positive += len(predicted & gold)
        predicted_total += len(predicted)
        gold_total += len(gold)
    return {
        "exact": f"{exact}/{len(PARAGRAPHS)}",
        **prf(true_positive, predicted_total, gold_total),
    }


def measure_components(texts: Sequence[str]) -> dict[str, Any]:
    """Milliseconds a note of each clinical-context component (synthetic mentions).

    Args:
        texts: the notes.

    Returns:
        Per component median and mean milliseconds a note, their sum, and the mentions a note.
    """
    import spacy
    from spacy.tokens import Span

    from pipeline.nlp.components import cs_attributes, cs_context, cs_sections, cs_sentences  # noqa: F401
    from pipeline.nlp.extensions import MENTIONS

    names = ("cs_sentences", "cs_sections", "cs_context", "cs_attributes")
    kinds = ("diagnosis", "symptom", "procedure", "finding")
    nlp = spacy.blank("en")
    for name in names:
        nlp.add_pipe(name)
    nlp.initialize()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    mentions_per_note: list[int] = []
    for text in texts:
        doc = nlp.make_doc(text)
        for name, component in nlp.pipeline:
            if name == "cs_context":  # mentions come from cs_mentions in the real pipeline
                spans = []
                for i in range(0, len(doc) - 1, 8):
                    kind = kinds[(i // 8) % len(kinds)]
                    span = Span(doc, i, i + 2, label=kind.upper())
                    span._.cs_kind = kind
                    spans.append(span)
                doc.spans[MENTIONS] = spans
                mentions_per_note.append(len(spans))
            started = time.perf_counter()
            doc = component(doc)
            seconds[name].append(time.perf_counter() - started)
    result: dict[str, Any] = {
        name: {
            "ms_per_note_median": round(statistics.median(values) * 1000, 3),
            "ms_per_note_mean": round(statistics.fmean(values) * 1000, 3),
        }
        for name, values in seconds.items()
    }
    result["total_ms_per_note_mean"] = round(sum(r["ms_per_note_mean"] for r in result.values()), 3)
    result["mentions_per_note_mean"] = round(statistics.fmean(mentions_per_note), 1)
    return result


def read_notes(data_dir: Path, limit: int | None) -> list[str]:
    """Read the CodiEsp dev notes.

    Args:
        data_dir: the reference data folder.
        limit: read at most this many notes (sorted by name).

    Returns:
        The note texts.

    Raises:
        DataFileError: the folder has no notes.
    """
    folder = data_dir / CODIESP_DEV
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise DataFileError(f"{folder}: no CodiEsp dev notes (*.txt) found")
    return [f.read_text(encoding="utf-8") for f in files[:limit]]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurements and print them as JSON.

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The exit code: 0, or 2 on a bad data folder.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="reference data folder")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N notes")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        texts = read_notes(args.data_dir, args.limit)
    except CodesuggestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sizes = [len(t) for t in texts]
    report: dict[str, Any] = {
        "notes": len(texts),
        "chars_per_note_mean": round(statistics.fmean(sizes)),
        "splitters": {},
    }
    for name, build in _splitters().items():
        nlp = build()
        report["splitters"][name] = measure_splitter(nlp, texts)
        report["splitters"][name]["paragraphs"] = measure_paragraphs(nlp)
    report["components"] = measure_components(texts)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
