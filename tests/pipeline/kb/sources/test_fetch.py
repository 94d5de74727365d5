"""Tests of ``codesuggest data fetch``: local HTTP downloads, fallback copies, refusals.

No test touches the internet: downloads come from an ``http.server`` on 127.0.0.1 serving a
folder in ``tmp_path``, and ``http://127.0.0.1:9/`` (the discard port, nothing listens) stands
for an unreachable source.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import pipeline.cli.data
import pipeline.cli.main
from pipeline.errors import RuleFileError
from pipeline.kb.sources.fetch import (
    STATUS_COPIED,
    STATUS_DOWNLOADED,
    STATUS_FAILED,
    STATUS_LINKED,
    STATUS_PRESENT,
    DataFile,
    Download,
    fetch_data,
    load_data_sources,
    tree_sha256,
)

UNREACHABLE = "http://127.0.0.1:9/nothing.zip"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server; yields its base URL and the folder it serves."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Run ``pipeline.cli.main.main`` with only the data commands registered."""
    monkeypatch.setattr(pipeline.cli.main, "BUILTIN_COMMANDS", (pipeline.cli.data.register,))
    return monkeypatch


def write_sources(path: Path, files: list[dict[str, object]]) -> Path:
    body = ",\n".join("  " + json.dumps(f) for f in files)
    path.write_text(
        f'{{\n "schema": "codesuggest.data-sources/1",\n "files": [\n{body}\n ]\n}}\n',
        encoding="utf-8",
    )
    return path


def run(args: list[str]) -> int:
    return pipeline.cli.main.main(["data", "fetch", *args])


def leftovers(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.rglob("*") if p.name.endswith((".part", ".old")) or p.name.startswith(".fetch-")
    )


def test_fetch_downloads_file_member_and_folder(
    tmp_path: Path,
    server: tuple[str, Path],
    cli: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, root = server
    plain = b"plain file\n"
    (root / "plain.txt").write_bytes(plain)
    with zipfile.ZipFile(root / "bundle.zip", "w") as bundle:
        bundle.writestr("top/inner/data.xml", "<x/>")
        bundle.writestr("top/notes/a.txt", "a")
        bundle.writestr("top/notes/sub/b.txt", "b")
    expected_tree = tmp_path / "expected"
    (expected_tree / "sub").mkdir(parents=True)
    (expected_tree / "a.txt").write_text("a")
    (expected_tree / "sub" / "b.txt").write_text("b")
    sources = write_sources(
        tmp_path / "sources.json",
        [
            {
                "dest": "x/plain.txt",
                "sources": [{"url": f"{base}/plain.txt"}],
                "sha256": sha(plain),
                "licence": "test",
            },
            {
                "dest": "x/data.xml",
                "sources": [{"url": f"{base}/bundle.zip", "member": "*data.xml"}],
                "sha256": sha(b"<x/>"),
                "licence": "test",
            },
            {
                "dest": "x/notes",
                "kind": "dir",
                "sources": [{"url": f"{base}/bundle.zip", "member": "top/notes/"}],
                "sha256": tree_sha256(expected_tree),
                "licence": "test",
            },
        ],
    )
    out = tmp_path / "out"
    assert run(["--out", str(out), "--sources", str(sources), "--timeout", "5"]) == 0
    assert (out / "x" / "plain.txt").read_bytes() == plain
    assert (out / "x" / "data.xml").read_text() == "<x/>"
    assert (out / "x" / "notes" / "sub" / "b.txt").read_text() == "b"
    table = capsys.readouterr().out
    assert table.count(STATUS_DOWNLOADED) == 3 and f"{base}/bundle.zip" in table and "verified" in table
    assert leftovers(out) == []

    # A second run finds verified copies in place; --force downloads again.
    assert run(["--out", str(out), "--sources", str(sources)]) == 0
    assert capsys.readouterr().out.count(STATUS_PRESENT) == 3
    assert run(["--out", str(out), "--sources", str(sources), "--force"]) == 0
    assert capsys.readouterr().out.count(STATUS_DOWNLOADED) == 3
    assert leftovers(out) == []


@pytest.mark.parametrize("link", [False, True], ids=["copy", "symlink"])
def test_fetch_falls_back_when_the_source_is_unreachable(
    tmp_path: Path, cli: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], link: bool
) -> None:
    fallback = tmp_path / "shared"
    (fallback / "hcpcs").mkdir(parents=True)
    content = b"reference copy"
    (fallback / "hcpcs" / "file.zip").write_bytes(content)
    sources = write_sources(
        tmp_path / "sources.json",
        [
            {
                "dest": "hcpcs/file.zip",
                "sources": [{"url": UNREACHABLE}],
                "sha256": sha(content),
                "licence": "test",
            }
        ],
    )
    out = tmp_path / "out"
    args = [
        "--out",
        str(out),
        "--fallback",
        str(fallback),
        "--sources",
        str(sources),
        "--timeout",
        "2",
    ]
    assert run(args + (["--link"] if link else [])) == 0
    dest = out / "hcpcs" / "file.zip"
    assert dest.read_bytes() == content
    assert dest.is_symlink() is link
    table = capsys.readouterr().out
    assert (STATUS_LINKED if link else STATUS_COPIED) in table
    assert "download failed" in table and str(fallback / "hcpcs" / "file.zip") in table


def test_fetch_refuses_a_corrupt_download(
    tmp_path: Path,
    server: tuple[str, Path],
    cli: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, root = server
    (root / "data.txt").write_bytes(b"tampered")
    sources = write_sources(
        tmp_path / "sources.json",
        [
            {
                "dest": "data.txt",
                "sources": [{"url": f"{base}/data.txt"}],
                "sha256": sha(b"genuine"),
                "licence": "t",
            }
        ],
    )
    out = tmp_path / "out"
    assert run(["--out", str(out), "--sources", str(sources)]) == 2
    err = capsys.readouterr().err
    assert "1 of 1 data file(s)" in err and "data.txt" in err and "does not match" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (out / "data.txt").exists()
    assert leftovers(out) == []

    # With the genuine file in the fallback folder, that copy is taken instead.
    fallback = tmp_path / "shared"
    fallback.mkdir()
    (fallback / "data.txt").write_bytes(b"genuine")
    assert run(["--out", str(out), "--sources", str(sources), "--fallback", str(fallback)]) == 0
    assert (out / "data.txt").read_bytes() == b"genuine"
    assert "download refused" in capsys.readouterr().out


def test_fetch_refuses_a_corrupt_fallback(tmp_path: Path) -> None:
    fallback = tmp_path / "shared"
    fallback.mkdir()
    (fallback / "data.txt").write_bytes(b"edited")
    item = DataFile("data.txt", "file", (), sha(b"genuine"), "t", "data.txt")
    (result,) = fetch_data([item], tmp_path / "out", fallback)
    assert result.status == STATUS_FAILED
    assert "fallback refused" in result.problems[-1]
    assert not (tmp_path / "out" / "data.txt").exists()


def test_fetch_refuses_an_archive_with_the_wrong_checksum(tmp_path: Path, server: tuple[str, Path]) -> None:
    base, root = server
    with zipfile.ZipFile(root / "a.zip", "w") as bundle:
        bundle.writestr("inner.txt", "x")
    item = load_data_sources(
        write_sources(
            tmp_path / "s.json",
            [
                {
                    "dest": "inner.txt",
                    "sources": [{"url": f"{base}/a.zip", "member": "inner.txt", "sha256": "0" * 64}],
                    "sha256": None,
                    "licence": "t",
                }
            ],
        )
    )
    (result,) = fetch_data(item, tmp_path / "out", timeout=5)
    assert result.status == STATUS_FAILED
    assert "sha256 of the archive does not match" in result.problems[0]


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ("missing.txt", "no member matches"),
        ("*.txt", "2 members"),
        ("../evil.txt", "no member matches"),
    ],
    ids=["absent", "ambiguous", "outside"],
)
def test_fetch_rejects_unusable_archive_members(
    tmp_path: Path, server: tuple[str, Path], member: str, message: str
) -> None:
    base, root = server
    with zipfile.ZipFile(root / "a.zip", "w") as bundle:
        bundle.writestr("one.txt", "1")
        bundle.writestr("two.txt", "2")
    item = DataFile("x.txt", "file", (Download(f"{base}/a.zip", member),), None, "t", "x.txt")
    (result,) = fetch_data([item], tmp_path / "out", timeout=5)
    assert result.status == STATUS_FAILED
    assert message in result.problems[0]


def test_fetch_rejects_unsafe_paths_inside_a_folder_archive(tmp_path: Path, server: tuple[str, Path]) -> None:
    base, root = server
    with zipfile.ZipFile(root / "a.zip", "w") as bundle:
        bundle.writestr("top/ok.txt", "ok")
        bundle.writestr("top/../../escape.txt", "bad")
    item = DataFile("folder", "dir", (Download(f"{base}/a.zip", "top/"),), None, "t", "folder")
    (result,) = fetch_data([item], tmp_path / "out", timeout=5)
    assert result.status == STATUS_FAILED
    assert "unsafe path" in result.problems[0]
    assert not (tmp_path / "escape.txt").exists()
    assert leftovers(tmp_path / "out") == []


def test_fetch_fails_cleanly_when_nothing_works(
    tmp_path: Path, cli: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = write_sources(
        tmp_path / "sources.json",
        [
            {"dest": "a/b.txt", "sources": [{"url": UNREACHABLE}], "sha256": None, "licence": "t"},
            {"dest": "derived.tsv", "sources": [], "sha256": None, "licence": "t"},
        ],
    )
    fallback = tmp_path / "empty"
    fallback.mkdir()
    out = tmp_path / "out"
    assert (
        run(
            [
                "--out",
                str(out),
                "--sources",
                str(sources),
                "--fallback",
                str(fallback),
                "--timeout",
                "2",
            ]
        )
        == 2
    )
    captured = capsys.readouterr()
    assert "2 of 2 data file(s)" in captured.err
    assert "a/b.txt (download failed" in captured.err and "not in the fallback folder" in captured.err
    assert captured.out.count(STATUS_FAILED) == 2
    assert leftovers(out) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "0"], "--timeout must be positive"),
        (["--fallback", "/nonexistent/dir"], "no such folder"),
        (["--only", "nothing/*"], "matches no entry"),
    ],
    ids=["timeout", "fallback", "only"],
)
def test_fetch_bad_options_exit_2(
    tmp_path: Path,
    cli: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    assert run(["--out", str(tmp_path / "out"), *args]) == 2
    assert message in capsys.readouterr().err


def test_fetch_only_selects_entries(tmp_path: Path, cli: pytest.MonkeyPatch) -> None:
    fallback = tmp_path / "shared"
    fallback.mkdir()
    (fallback / "keep.txt").write_text("k")
    sources = write_sources(
        tmp_path / "s.json",
        [
            {"dest": "keep.txt", "sources": [], "sha256": None, "licence": "t"},
            {"dest": "skip.txt", "sources": [], "sha256": None, "licence": "t"},
        ],
    )
    out = tmp_path / "out"
    code = run(
        [
            "--out",
            str(out),
            "--fallback",
            str(fallback),
            "--sources",
            str(sources),
            "--only",
            "keep*",
        ]
    )
    assert code == 0
    assert (out / "keep.txt").read_text() == "k"
    assert not (out / "skip.txt").exists()


def test_fetch_tree_hash_sees_content_and_names(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.txt").write_text("1")
    first = tree_sha256(folder)
    (folder / "a.txt").write_text("2")
    second = tree_sha256(folder)
    (folder / "a.txt").rename(folder / "b.txt")
    assert len({first, second, tree_sha256(folder)}) == 3


GOOD: dict[str, object] = {
    "dest": "a.txt",
    "sources": [{"url": "https://example.org/a.txt"}],
    "sha256": None,
    "licence": "t",
}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({**GOOD, "dest": "/etc/passwd"}, "relative path"),
        ({**GOOD, "dest": "../outside.txt"}, "relative path"),
        ({**GOOD, "fallback": "a/../../b"}, "relative path"),
        ({**GOOD, "sha256": "abc"}, "should match pattern"),
        ({**GOOD, "sources": [{"url": "ftp://x/a"}]}, "must start with"),
        ({**GOOD, "sources": [{"url": "https://x/a", "mirror": 1}]}, "unknown key 'mirror'"),
        ({**GOOD, "kind": "dir"}, "folder prefix"),
        ({**GOOD, "kind": "pipe"}, "file or dir"),
        ({**GOOD, "sources": [{"url": "https://x/a.zip", "member": "d/"}]}, "cannot be a folder"),
        ({**GOOD, "licence": ""}, "without edge spaces"),
        ({**GOOD, "mirror": "x"}, "unknown key"),
        ({**GOOD, "dest": "b.txt", "sources": "https://x"}, "valid array"),
        (GOOD, "is listed twice"),
    ],
    ids=[
        "absolute",
        "dotdot",
        "fallback-dotdot",
        "bad-sha",
        "bad-scheme",
        "source-key",
        "dir-without-prefix",
        "bad-kind",
        "file-with-prefix",
        "no-licence",
        "unknown-key",
        "sources-not-list",
        "duplicate",
    ],
)
def test_fetch_sources_loader_rejects_bad_entries(tmp_path: Path, bad: dict[str, object], message: str) -> None:
    path = write_sources(tmp_path / "s.json", [GOOD, bad])
    with pytest.raises(RuleFileError) as err:
        load_data_sources(path)
    assert f"{path}: line 5: files[1]" in str(err.value)
    assert message in str(err.value)


def test_fetch_packaged_sources_match_the_reference_copy(data_dir: Path) -> None:
    files = load_data_sources()
    dests = {f.dest for f in files}
    for required in (
        "icd10cm/icd10c-tabular-April-1-2026.xml",
        "icd10cm/derived_csv_wbdill/ICD10CM_2025_Index.csv",
        "hcpcs/2020-Alpha-Numeric-HCPCS-File.zip",
        "codiesp/train/text_files_en",
        "codiesp/dev/devD.tsv",
    ):
        assert required in dests
    for item in files:
        assert item.licence and item.sha256, item.dest
        src = data_dir / item.fallback
        assert src.exists(), item.dest
        digest = tree_sha256(src) if item.kind == "dir" else hashlib.sha256(src.read_bytes()).hexdigest()
        assert digest == item.sha256, item.dest
    official = {s.url for f in files for s in f.sources}
    assert any(u.startswith("https://ftp.cdc.gov/pub/Health_Statistics/NCHS/Publications/ICD10CM/") for u in official)
    assert any(u.startswith("https://www.cms.gov/") for u in official)
    assert any(u.startswith("https://zenodo.org/record/3837305/") for u in official)
