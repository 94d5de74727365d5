"""Building the knowledge base from the reference data: each source read by its reader
(:mod:`pipeline.kb.sources`), assembled into a :class:`~pipeline.kb.store.KnowledgeBase`.

``codesuggest kb build`` (``make kb``) calls :func:`build_knowledge_base` and saves the result.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.errors import DataFileError
from pipeline.kb.sources import cpt as cpt_module
from pipeline.kb.sources import hcpcs as hcpcs_module
from pipeline.kb.sources import modifiers as modifiers_module
from pipeline.kb.sources.icd10cm import find_tabular_file, packaged_tabular_path, read_tabular
from pipeline.kb.sources.index import find_index_files, read_alphabetic_index
from pipeline.kb.store import KnowledgeBase
from pipeline.manifest import sha256_file

logger = logging.getLogger(__name__)

_INDEX_ROLES = {
    "index": "ICD-10-CM Alphabetic Index",
    "external": "ICD-10-CM External Cause Index",
    "neoplasm": "ICD-10-CM Neoplasm Table",
    "drug": "ICD-10-CM Table of Drugs and Chemicals",
}


def build_knowledge_base(data_dir: Path | None, cpt_file: Path | None = None, progress: bool = False) -> KnowledgeBase:
    """Build the knowledge base from the reference data.

    Args:
        data_dir: the reference data folder (``icd10cm/``, ``hcpcs/``). None builds from the
            tabular XML packaged with ``simple-icd-10-cm`` only (no Alphabetic Index, no
            HCPCS), with a warning.
        cpt_file: a licensed CPT file (``code<TAB>descriptor``); None uses the project's
            starter lexicon. A KB built from a licensed file contains AMA text: do not commit
            it.
        progress: show a progress bar.

    Returns:
        The knowledge base.

    Raises:
        DataFileError: a source file is missing or malformed.
    """
    steps: list[tuple[str, Callable[[], None]]] = []
    state: dict[str, Any] = {"sources": [], "index": None, "hcpcs": [], "hcpcs_modifiers": []}
    versions: dict[str, str] = {}
    if data_dir is None:
        logger.warning("no data dir: building ICD-10-CM from the packaged tabular only (no index, no HCPCS)")
    else:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise DataFileError(f"{data_dir}: no such data folder (run `make data` or pass --data-dir)")

    def tabular_step() -> None:
        found = find_tabular_file(data_dir) if data_dir is not None else None
        path = found or packaged_tabular_path()
        state["tabular"] = read_tabular(path)
        versions["ICD10CM"] = state["tabular"].version
        state["sources"].append(_source_ref(path, data_dir, "ICD-10-CM tabular"))

    def index_step() -> None:
        assert data_dir is not None
        files = find_index_files(data_dir)
        if "index" not in files:
            raise DataFileError(f"{data_dir / 'icd10cm'}: no Alphabetic Index (CDC XML or flattened CSV)")
        state["index"] = read_alphabetic_index(files)
        years = sorted(set(state["index"].versions.values()))
        versions["ICD10CM_INDEX"] = "/".join(f"FY{y}" for y in years if y)
        for source, path in sorted(files.items()):
            state["sources"].append(_source_ref(path, data_dir, _INDEX_ROLES[source]))

    def hcpcs_step() -> None:
        assert data_dir is not None
        path = hcpcs_module.find_hcpcs_file(data_dir)
        parsed = hcpcs_module.read_hcpcs(path)
        synonyms = {s.code: s for s in hcpcs_module.load_hcpcs_synonyms()}
        for rec in parsed.codes:
            syn = synonyms.get(rec.code)
            if syn is not None:
                rec.synonyms = tuple(dict.fromkeys((*rec.synonyms, *syn.phrases)))
                rec.meta = {**rec.meta, "synonym_category": syn.category}
        state["hcpcs"] = parsed.codes
        state["hcpcs_modifiers"] = parsed.modifiers
        versions["HCPCS"] = parsed.version
        state["sources"].append(_source_ref(path, data_dir, "HCPCS Level II"))

    def cpt_step() -> None:
        if cpt_file is not None:
            state["cpt"] = cpt_module.read_cpt_file(Path(cpt_file))
            versions["CPT"] = f"licensed file {Path(cpt_file).name}"
            ref = {
                "path": Path(cpt_file).name,
                "sha256": sha256_file(Path(cpt_file)),
                "role": "CPT (licensed)",
            }
            state["sources"].append(ref)
            logger.warning("the KB contains licensed CPT descriptors: do not commit or share it")
        else:
            state["cpt"] = cpt_module.load_starter_lexicon()
            versions["CPT"] = f"starter {cpt_module.STARTER_VERSION}"

    def modifiers_step() -> None:
        project = modifiers_module.load_modifiers()
        state["modifiers"] = modifiers_module.merge_modifiers(project, state["hcpcs_modifiers"])

    steps.append(("ICD-10-CM tabular", tabular_step))
    if data_dir is not None:
        steps.append(("Alphabetic Index", index_step))
        steps.append(("HCPCS", hcpcs_step))
    steps.append(("CPT", cpt_step))
    steps.append(("modifiers", modifiers_step))
    bar = _progress_bar(len(steps) + 1, progress)
    for label, step in steps:
        bar.set_description(label)
        step()
        bar.update(1)
    bar.set_description("assembling")
    kb = KnowledgeBase(
        state["tabular"],
        state["index"],
        state["hcpcs"],
        state["cpt"],
        state["modifiers"],
        versions,
        state["sources"],
    )
    bar.update(1)
    bar.close()
    return kb


def _source_ref(path: Path, data_dir: Path | None, role: str) -> dict[str, Any]:
    """A manifest reference to a source file: path relative to the data folder (or package)."""
    path = Path(path)
    rel: str
    if data_dir is not None and path.resolve().is_relative_to(Path(data_dir).resolve()):
        rel = path.resolve().relative_to(Path(data_dir).resolve()).as_posix()
    else:
        rel = f"simple_icd_10_cm/data/{path.name}"
        with contextlib.suppress(metadata.PackageNotFoundError):
            rel += f" (simple-icd-10-cm {metadata.version('simple-icd-10-cm')})"
    return {"path": rel, "sha256": sha256_file(path), "role": role}


class _NoBar:
    def set_description(self, _: str) -> None:
        pass

    def update(self, _: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()

    return tqdm(total=total, unit="step", leave=False)
