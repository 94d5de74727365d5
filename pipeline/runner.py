"""Running a model over a coded corpus and scoring it: what ``codesuggest evaluate`` does.

This sits above :mod:`pipeline.suggest` (it drives a :class:`~pipeline.suggest.Suggester`);
the figures themselves are the pure functions of :mod:`pipeline.evaluate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tqdm import tqdm

from corpora.format import read_corpus
from pipeline.evaluate import NotePrediction, encounter_row, score, score_encounters
from pipeline.suggest import Suggester


def evaluate_corpus(
    corpus: Path,
    *,
    model_dir: Path | None = None,
    kb_dir: Path | None = None,
    system: str = "ICD10CM",
    encounter: bool = False,
    progress: bool = True,
    batch_size: int = 32,
) -> tuple[dict[str, Any], list[NotePrediction]]:
    """Run the suggestion model over a gold corpus and score it.

    Args:
        corpus: a corpus file (JSONL, validated as a whole first).
        model_dir: the model (default ``models/default``).
        kb_dir: the knowledge base (default ``models/kb``).
        system: the code system scored in ranking mode.
        encounter: score the final encounter code sets instead (all systems, with modifiers).
        progress: show a progress bar.
        batch_size: notes per pipeline batch.

    Returns:
        The report (see :func:`score`, or :func:`score_encounters`) and the per-note predictions.
    """
    notes = read_corpus(Path(corpus))
    suggester = Suggester.load(model_dir, kb_dir)
    predictions: list[NotePrediction] = []
    encounter_rows: list[dict[str, Any]] = []
    with tqdm(total=len(notes), desc="evaluate", disable=not progress) as bar:
        for start in range(0, len(notes), batch_size):
            batch = notes[start : start + batch_size]
            by_setting: dict[str, list[int]] = {}
            for i, note in enumerate(batch):
                by_setting.setdefault(note.setting or "outpatient", []).append(i)
            results: list[Any] = [None] * len(batch)
            for setting, idx in by_setting.items():
                outs = suggester.suggest_batch(
                    [batch[i].text for i in idx],
                    setting=setting,
                    note_ids=[batch[i].id for i in idx],
                    code_systems=None if encounter else [system],
                )
                for i, out in zip(idx, outs, strict=True):
                    results[i] = out
            for note, result in zip(batch, results, strict=True):
                if encounter:
                    encounter_rows.append(encounter_row(note, result))
                    gold = {f"{c.system}:{c.code}" for c in note.codes if c.system != "ICD10PCS"}
                    got = [f"{line.system}:{line.code}" for line in result.code_set]
                    predictions.append(NotePrediction(note.id, got, set(got), gold))
                else:
                    ranked = [s.code for s in result.suggestions]
                    predictions.append(
                        NotePrediction(
                            note.id,
                            ranked,
                            {s.code for s in result.suggestions if s.status == "suggested"},
                            set(note.codes_of(system)),
                            {s.code: s.score for s in result.suggestions},
                        )
                    )
            bar.update(len(batch))
    train_counts = {c: int(n) for c, n in suggester.priors.code_counts.items()}
    report = score_encounters(encounter_rows) if encounter else score(predictions, train_counts)
    report["model_version"] = suggester.model_version
    report["code_set_versions"] = suggester.code_set_versions
    report["corpus"] = str(corpus)
    report["system"] = "all" if encounter else system
    return report, predictions
