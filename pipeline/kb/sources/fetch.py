"""``codesuggest data fetch``: the reference data from its official sources, or from a local copy.

``resources/data_sources.json`` lists every file (or folder) the project reads under its data
folder, with the places it can be downloaded from (the official CDC, CMS and Zenodo archives
first, then the exact origin of our reference copy when that differs), the member to take out
of a downloaded archive, the expected sha256 and the licence. For each entry the fetcher tries
the downloads in order with a short timeout; when all fail (no internet, moved file, checksum
mismatch) it copies (or, with ``--link``, symlinks) the same file from the fallback folder,
normally ``../shared/data``. Every file is written to a ``.part`` name and renamed only once
complete and verified, so an interrupted run never leaves a half-written file in place.

A folder's sha256 is the sha256 of its listing: one ``<relative path>\\t<sha256>\\n`` line per
file, sorted by path (:func:`tree_sha256`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import http.client
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Annotated, BinaryIO, Literal

from pydantic import AfterValidator, Field, model_validator

from pipeline import __version__
from pipeline.errors import DataFileError
from pipeline.manifest import sha256_file
from pipeline.rulefile import RuleFile, RuleModel, Text, entry_error, load_rules, read_rule_text, schema_field

logger = logging.getLogger(__name__)

SOURCES_RESOURCE = "data_sources.json"
DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 16
_SHA_LENGTH = 64

STATUS_DOWNLOADED = "downloaded"
STATUS_COPIED = "fallback copy"
STATUS_LINKED = "fallback link"
STATUS_PRESENT = "present"
STATUS_FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class Download:
    """One place an entry can be downloaded from.

    Attributes:
        url: the address (http, https or file).
        member: the zip member to take out of the download: an exact path, a file-name pattern
            (``*tabular*.xml``), or a folder prefix ending in ``/`` for a folder entry; None when
            the download is the file itself.
        sha256: expected sha256 of the downloaded file (the archive), when known.
    """

    url: str
    member: str | None = None
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class DataFile:
    """One file or folder of the data folder.

    Attributes:
        dest: path relative to the data folder (``hcpcs/2020-Alpha-Numeric-HCPCS-File.zip``).
        kind: ``file`` or ``dir``.
        sources: downloads to try, in order; empty when the file has no download (a derived file).
        sha256: expected sha256 of the file, or of the folder listing; None when unknown.
        licence: the licence under which the project may use it.
        fallback: path relative to the fallback folder (defaults to ``dest``).
        page: the official page that documents the file, for people.
        note: anything a person should know (how a derived file was made...).
    """

    dest: str
    kind: str
    sources: tuple[Download, ...]
    sha256: str | None
    licence: str
    fallback: str
    page: str | None = None
    note: str | None = None


@dataclass
class FetchResult:
    """What happened to one entry.

    Attributes:
        dest: the entry's ``dest``.
        status: ``downloaded``, ``fallback copy``, ``fallback link``, ``present`` or ``FAILED``.
        origin: the URL or path it came from (empty for ``present``).
        verified: True when the sha256 was checked and matched, False when there was none.
        problems: why earlier ways failed (download errors, checksum mismatches...).
    """

    dest: str
    status: str
    origin: str = ""
    verified: bool = False
    problems: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# The sources file


def load_data_sources(path: Path | None = None) -> list[DataFile]:
    """Load and validate the list of data files.

    Args:
        path: read this file instead of the packaged ``resources/data_sources.json``.

    Returns:
        The entries in file order.

    Raises:
        RuleFileError: wrong schema, unknown keys, an unsafe or repeated path, a bad URL or
            sha256, or a folder entry whose members are not folder prefixes; the message names
            the file, line and entry.
    """
    text, source = read_rule_text(SOURCES_RESOURCE, path)
    result: list[DataFile] = []
    seen: set[str] = set()
    for i, entry in enumerate(load_rules(DataSourcesFile, text, source).files):
        if entry.dest in seen:
            raise entry_error(text, source, ("files", i), f"dest {entry.dest} is listed twice")
        seen.add(entry.dest)
        sources = tuple(Download(d.url, d.member, d.sha256) for d in entry.sources)
        fallback = entry.fallback or entry.dest
        result.append(
            DataFile(entry.dest, entry.kind, sources, entry.sha256, entry.licence, fallback, entry.page, entry.note)
        )
    return result


def _relative_path(text: str) -> str:
    pure = PurePosixPath(text)
    if pure.is_absolute() or ".." in pure.parts or "\\" in text or text in ("", "."):
        raise ValueError(f"{text!r} must be a relative path inside the folder")
    return pure.as_posix()


RelativePath = Annotated[Text, AfterValidator(_relative_path)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def _url(text: str) -> str:
    if not text.startswith(("https://", "http://", "file://")):
        raise ValueError(f"url {text!r} must start with https://, http:// or file://")
    return text


class _Download(RuleModel):
    url: Annotated[Text, AfterValidator(_url)]
    member: Text | None = None
    sha256: Sha256 | None = None


class _DataFile(RuleModel):
    dest: RelativePath
    sources: tuple[_Download, ...]
    sha256: Sha256 | None
    licence: Text
    kind: Literal["file", "dir"] = "file"
    fallback: RelativePath | None = None
    page: Text | None = None
    note: Text | None = None

    @model_validator(mode="after")
    def _members(self) -> _DataFile:
        for d in self.sources:
            if self.kind == "dir" and (d.member is None or not d.member.endswith("/")):
                raise ValueError("a folder entry needs a 'member' folder prefix ending in '/'")
            if self.kind == "file" and d.member is not None and d.member.endswith("/"):
                raise ValueError("a file entry's member cannot be a folder")
        return self


class DataSourcesFile(RuleFile):
    """``data_sources.json`` (schema ``codesuggest.data-sources/1``)."""

    schema_id: Literal["codesuggest.data-sources/1"] = schema_field()
    files: tuple[_DataFile, ...]


# ---------------------------------------------------------------------------------------------
# Hashes


def tree_sha256(folder: Path) -> str:
    """Return the sha256 of a folder's listing (relative path and sha256 of every file).

    Args:
        folder: the folder.

    Returns:
        The hex digest of the sorted ``<path>\\t<sha256>\\n`` lines.
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    listing = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
    for relative, path in listing:
        digest.update(f"{relative}\t{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def content_sha256(path: Path) -> str:
    """Return the sha256 of a file, or :func:`tree_sha256` of a folder."""
    return tree_sha256(path) if Path(path).is_dir() else sha256_file(path)


# ---------------------------------------------------------------------------------------------
# Fetching


class _Fetcher:
    """Downloads (each URL once per run), extracts, verifies and installs entries."""

    def __init__(self, out_dir: Path, fallback_dir: Path | None, timeout: float, link: bool, progress: bool):
        self.out_dir = out_dir
        self.fallback_dir = fallback_dir
        self.timeout = timeout
        self.link = link
        self.progress = progress
        self.cache_dir = Path(tempfile.mkdtemp(prefix=".fetch-", dir=out_dir))
        self._downloads: dict[str, Path | str] = {}

    def close(self) -> None:
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def fetch(self, item: DataFile, force: bool) -> FetchResult:
        dest = self.out_dir / item.dest
        result = FetchResult(dest=item.dest, status=STATUS_FAILED)
        if not force and (dest.exists() or dest.is_symlink()):
            if item.sha256 is None and dest.exists():
                result.status = STATUS_PRESENT
                return result
            if dest.exists() and content_sha256(dest) == item.sha256:
                result.status, result.verified = STATUS_PRESENT, True
                return result
            result.problems.append("existing copy does not match its sha256; fetching again")
        for source in item.sources:
            problem = self._try_download(item, source, dest)
            if problem is None:
                result.status, result.origin, result.verified = (
                    STATUS_DOWNLOADED,
                    source.url,
                    item.sha256 is not None,
                )
                return result
            result.problems.append(problem)
            logger.info("%s: %s", item.dest, problem)
        if not item.sources:
            result.problems.append("no download source (derived file)")
        problem = self._try_fallback(item, dest)
        if problem is None:
            result.status = STATUS_LINKED if self.link else STATUS_COPIED
            result.origin = str(self._fallback_path(item))
            result.verified = item.sha256 is not None
            return result
        result.problems.append(problem)
        return result

    # -- downloads

    def _download(self, url: str) -> Path | str:
        """Return the downloaded file, or the reason it could not be downloaded."""
        if url in self._downloads:
            return self._downloads[url]
        target = self.cache_dir / hashlib.sha256(url.encode()).hexdigest()[:32]
        part = target.with_suffix(".part")
        outcome: Path | str
        try:
            request = urllib.request.Request(url, headers={"User-Agent": f"codesuggest/{__version__}"})
            with (
                urllib.request.urlopen(request, timeout=self.timeout) as response,
                open(part, "wb") as sink,
            ):
                total = int(response.headers.get("Content-Length") or 0) or None
                for chunk in _progress(_chunks(response), total, url, self.progress):
                    sink.write(chunk)
            part.replace(target)
            outcome = target
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            part.unlink(missing_ok=True)
            reason = getattr(exc, "reason", None) or exc
            outcome = f"download failed ({url}): {reason}"
        self._downloads[url] = outcome
        return outcome

    def _try_download(self, item: DataFile, source: Download, dest: Path) -> str | None:
        downloaded = self._download(source.url)
        if isinstance(downloaded, str):
            return downloaded
        if source.sha256 is not None and sha256_file(downloaded) != source.sha256:
            return f"download refused ({source.url}): sha256 of the archive does not match"
        part = _part_path(dest)
        try:
            if source.member is None:
                _copy_file(downloaded, part)
            elif item.kind == "dir":
                _extract_folder(downloaded, source.member, part)
            else:
                _extract_member(downloaded, source.member, part)
        except DataFileError as exc:
            _remove(part)
            return f"download unusable ({source.url}): {exc}"
        return self._verify_and_install(item, part, dest, f"download refused ({source.url})")

    # -- fallback

    def _fallback_path(self, item: DataFile) -> Path:
        assert self.fallback_dir is not None
        return (self.fallback_dir / item.fallback).resolve()

    def _try_fallback(self, item: DataFile, dest: Path) -> str | None:
        if self.fallback_dir is None:
            return "no fallback folder given"
        src = self._fallback_path(item)
        wanted_dir = item.kind == "dir"
        if not src.exists() or src.is_dir() != wanted_dir:
            return f"not in the fallback folder ({src})"
        part = _part_path(dest)
        if self.link:
            if item.sha256 is not None and content_sha256(src) != item.sha256:
                return f"fallback refused ({src}): sha256 does not match"
            part.parent.mkdir(parents=True, exist_ok=True)
            _remove(part)
            part.symlink_to(src, target_is_directory=wanted_dir)
            _install(part, dest)
            return None
        if wanted_dir:
            _copy_tree(src, part)
        else:
            _copy_file(src, part)
        return self._verify_and_install(item, part, dest, f"fallback refused ({src})")

    @staticmethod
    def _verify_and_install(item: DataFile, part: Path, dest: Path, label: str) -> str | None:
        if item.sha256 is not None:
            actual = content_sha256(part)
            if actual != item.sha256:
                _remove(part)
                return f"{label}: sha256 {actual[:12]}... does not match the expected {item.sha256[:12]}..."
        _install(part, dest)
        return None


def _chunks(response: BinaryIO) -> Iterator[bytes]:
    while chunk := response.read(_CHUNK):
        yield chunk


def _progress(chunks: Iterator[bytes], total: int | None, url: str, enabled: bool) -> Iterator[bytes]:
    if not enabled:
        yield from chunks
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1][:40], leave=False) as bar:
        for chunk in chunks:
            bar.update(len(chunk))
            yield chunk


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _install(part: Path, dest: Path) -> None:
    """Put a finished ``.part`` file or folder in place of ``dest``."""
    if dest.is_dir() and not dest.is_symlink():
        # A folder cannot be renamed over an existing one: move the old one aside first.
        old = dest.with_name(dest.name + ".old")
        _remove(old)
        dest.rename(old)
        part.rename(dest)
        shutil.rmtree(old)
        return
    if part.is_dir() and not part.is_symlink() and (dest.is_symlink() or dest.exists()):
        dest.unlink()  # a folder cannot replace a file or symlink in one rename
    os.replace(part, dest)


def _copy_file(src: Path, part: Path) -> None:
    part.parent.mkdir(parents=True, exist_ok=True)
    _remove(part)
    shutil.copyfile(src, part)


def _copy_tree(src: Path, part: Path) -> None:
    # Plain copies: the reference copy is read-only and its modes must not follow the files.
    _remove(part)
    part.mkdir(parents=True)
    for path in sorted(src.rglob("*")):
        if path.is_file():
            target = part / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def _safe_member_path(name: str) -> PurePosixPath:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or "\\" in name:
        raise DataFileError(f"archive member {name!r} has an unsafe path")
    return pure


def _open_zip(archive: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataFileError(f"not a zip archive: {exc}") from exc


def _extract_member(archive: Path, pattern: str, part: Path) -> None:
    with _open_zip(archive) as bundle:
        names = [n for n in bundle.namelist() if not n.endswith("/")]
        if "/" in pattern:
            matches = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        else:
            matches = [n for n in names if fnmatch.fnmatchcase(PurePosixPath(n).name, pattern)]
        if len(matches) != 1:
            found = "no member" if not matches else f"{len(matches)} members ({matches[:3]})"
            raise DataFileError(f"{found} matches {pattern!r}")
        _safe_member_path(matches[0])
        part.parent.mkdir(parents=True, exist_ok=True)
        _remove(part)
        with bundle.open(matches[0]) as source, open(part, "wb") as sink:
            shutil.copyfileobj(source, sink, _CHUNK)


def _extract_folder(archive: Path, prefix: str, part: Path) -> None:
    with _open_zip(archive) as bundle:
        members = [n for n in bundle.namelist() if n.startswith(prefix) and not n.endswith("/")]
        if not members:
            raise DataFileError(f"no member under {prefix!r}")
        _remove(part)
        part.mkdir(parents=True)
        for name in members:
            relative = _safe_member_path(name[len(prefix) :])
            target = part.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(name) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink, _CHUNK)


def fetch_data(
    files: list[DataFile],
    out_dir: Path,
    fallback_dir: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    link: bool = False,
    force: bool = False,
    progress: bool = False,
) -> list[FetchResult]:
    """Download (or copy from the fallback folder) every entry into ``out_dir``.

    Args:
        files: the entries (see :func:`load_data_sources`).
        out_dir: the data folder to fill; created when missing.
        fallback_dir: the folder to copy from when downloads fail, or None for none.
        timeout: seconds to wait on a connection or read before giving up a download.
        link: symlink fallback files instead of copying them.
        force: fetch again even when a verified copy is already in place.
        progress: show a progress bar per download.

    Returns:
        One result per entry, in order; failed entries have status ``FAILED`` and their
        reasons in ``problems``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fetcher = _Fetcher(out_dir, Path(fallback_dir) if fallback_dir else None, timeout, link, progress)
    try:
        results = [fetcher.fetch(item, force) for item in files]
    finally:
        fetcher.close()
    for result in results:
        logger.info("%s: %s %s", result.dest, result.status, result.origin)
    return results


def format_summary(results: list[FetchResult]) -> str:
    """Return the results as a plain-text table (file, how, checksum, from where)."""
    rows = [("file", "how", "sha256", "from")]
    for result in results:
        check = "verified" if result.verified else ("-" if result.status == STATUS_FAILED else "unknown")
        if result.status == STATUS_FAILED:
            origin = "; ".join(result.problems)
        elif result.status in (STATUS_COPIED, STATUS_LINKED) and result.problems:
            origin = f"{result.origin} (after: {result.problems[-1]})"
        else:
            origin = result.origin
        rows.append((result.dest, result.status, check, origin))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in rows]
    lines.insert(1, "-" * (sum(widths) + 6 + max(len(row[3]) for row in rows)))
    return "\n".join(lines)
