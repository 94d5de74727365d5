"""Artefact manifests: every saved artefact is a folder with a ``manifest.json``.

A manifest records what the artefact is (name, version, created_at, git commit), what it was
built from (code-set versions, training-data reference and sha256), how (params), how well it did
(held-out metrics), with which libraries, and the sha256 of every file in the folder. Loaders call
:func:`verify_manifest` before reading anything (in particular before ``joblib.load``), so a
truncated, edited or foreign file is refused with a clear message instead of being unpickled.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.errors import ArtefactError

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = "codesuggest.manifest/1"

# Libraries whose versions decide whether a saved artefact can be read back faithfully.
TRACKED_LIBRARIES = ("spacy", "scikit-learn", "numpy", "scipy", "joblib", "medspacy", "scispacy")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Return the hex sha256 of a file's bytes.

    Args:
        path: the file to hash.
        chunk_size: bytes read at a time.

    Returns:
        The lower-case hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions(names: Iterable[str] = TRACKED_LIBRARIES) -> dict[str, str]:
    """Return the installed version of each named distribution (missing ones are left out)."""
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(cwd: Path | None = None) -> str | None:
    """Return the current git commit of the working tree, or None outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


@dataclass
class Manifest:
    """The parsed content of a ``manifest.json``.

    Attributes:
        name: artefact name, e.g. ``"codesuggest-kb"``.
        version: artefact version string.
        kind: what loader reads it (``"kb"``, ``"model"``...).
        created_at: ISO 8601 UTC time of creation.
        git_commit: commit of the code that built it, when known.
        code_sets: code-set versions, e.g. ``{"ICD10CM": "FY2026 (April 1, 2026)"}``.
        training_data: references to the data it was built from, each with a sha256.
        params: the settings it was built with.
        metrics: held-out metrics.
        libraries: library versions at build time.
        files: relative path -> sha256 for every file in the folder except the manifest.
        extra: anything else the artefact wants to record.
    """

    name: str
    version: str
    kind: str
    created_at: str = ""
    git_commit: str | None = None
    code_sets: dict[str, str] = field(default_factory=dict)
    training_data: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form, with the schema tag first."""
        return {
            "schema": MANIFEST_SCHEMA,
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "created_at": self.created_at,
            "git_commit": self.git_commit,
            "code_sets": self.code_sets,
            "training_data": self.training_data,
            "params": self.params,
            "metrics": self.metrics,
            "libraries": self.libraries,
            "files": self.files,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "manifest") -> Manifest:
        """Build a manifest from parsed JSON, rejecting unknown keys and a wrong schema."""
        if data.get("schema") != MANIFEST_SCHEMA:
            raise ArtefactError(f"{source}: not a codesuggest manifest (schema {data.get('schema')!r})")
        known = set(cls.__dataclass_fields__) | {"schema"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ArtefactError(f"{source}: unknown manifest keys {unknown}")
        missing = [k for k in ("name", "version", "kind") if not data.get(k)]
        if missing:
            raise ArtefactError(f"{source}: manifest lacks {missing}")
        values = {k: v for k, v in data.items() if k != "schema"}
        return cls(**values)


def write_manifest(folder: Path, manifest: Manifest) -> Manifest:
    """Hash every file of ``folder`` and write its ``manifest.json``.

    ``created_at``, ``git_commit`` and ``libraries`` are filled in when left empty.

    Args:
        folder: the artefact folder, already holding its files.
        manifest: what to record; its ``files`` is replaced by fresh hashes.

    Returns:
        The manifest as written.
    """
    folder = Path(folder)
    manifest.files = {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST_NAME
    }
    if not manifest.created_at:
        manifest.created_at = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    if manifest.git_commit is None:
        manifest.git_commit = git_commit()
    if not manifest.libraries:
        manifest.libraries = library_versions()
    text = json.dumps(manifest.to_dict(), indent=2, sort_keys=False, ensure_ascii=False)
    (folder / MANIFEST_NAME).write_text(text + "\n", encoding="utf-8")
    return manifest


def read_manifest(folder: Path) -> Manifest:
    """Read and parse ``folder/manifest.json`` without checking the files."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise ArtefactError(f"{folder}: no {MANIFEST_NAME}; not an artefact folder (build it first)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtefactError(f"{path}: unreadable manifest: {exc}") from exc
    return Manifest.from_dict(data, source=str(path))


def verify_manifest(
    folder: Path,
    kind: str | None = None,
    check_libraries: Iterable[str] = ("spacy", "scikit-learn", "numpy"),
) -> Manifest:
    """Check an artefact folder against its manifest before anything in it is loaded.

    Args:
        folder: the artefact folder.
        kind: the expected ``kind``; None accepts any.
        check_libraries: libraries whose installed major.minor version must equal the recorded one
            (pickled estimators are only safe across identical minor versions).

    Returns:
        The verified manifest.

    Raises:
        ArtefactError: missing manifest, wrong kind, a missing or changed file, or a library
            version mismatch.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if kind is not None and manifest.kind != kind:
        raise ArtefactError(f"{folder}: is a {manifest.kind!r} artefact, expected {kind!r}")
    for rel, expected in manifest.files.items():
        path = folder / rel
        if not path.is_file():
            raise ArtefactError(f"{folder}: file {rel} listed in the manifest is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtefactError(
                f"{folder}: file {rel} does not match its manifest hash (corrupt or edited): "
                f"expected {expected[:12]}..., found {actual[:12]}..."
            )
    installed = library_versions(check_libraries)
    for lib in check_libraries:
        recorded = manifest.libraries.get(lib)
        have = installed.get(lib)
        if recorded and have and _minor(recorded) != _minor(have):
            raise ArtefactError(
                f"{folder}: built with {lib} {recorded}, but {lib} {have} is installed; "
                f"rebuild the artefact or install {lib}=={recorded}"
            )
    logger.debug("verified artefact %s %s (%d files)", manifest.name, manifest.version, len(manifest.files))
    return manifest


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])
