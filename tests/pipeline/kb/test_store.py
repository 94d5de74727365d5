"""Tests of the KnowledgeBase store: counts, lookups, hierarchy, 7th characters, Excludes, index
paths, search, save/load and the committed artefact.

The full knowledge base is built once per session (``kb_dir`` / ``kb`` in tests/conftest.py).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from pipeline.errors import (
    ArtefactError,
    InvalidSeventhCharacterError,
    MalformedCodeError,
    UnknownCodeError,
)
from pipeline.kb.search import normalize_words
from pipeline.kb.sources.cpt import load_starter_lexicon
from pipeline.kb.sources.hcpcs import find_hcpcs_file, read_hcpcs
from pipeline.kb.store import KnowledgeBase, NoteReference, parse_note_references
from pipeline.locations import default_kb_dir
from pipeline.manifest import read_manifest


# -- counts and versions ---------------------------------------------------------------------------
def test_store_counts_and_versions(kb: KnowledgeBase, data_dir: Path) -> None:
    stats = kb.stats()
    assert stats["ICD10CM"]["billable"] == 74_719
    assert stats["ICD10CM"]["codes"] == 98_186
    hcpcs = read_hcpcs(find_hcpcs_file(data_dir))
    assert stats["HCPCS"]["codes"] == len(hcpcs.codes) == 6_710
    assert stats["HCPCS"]["billable"] == len(hcpcs.active_codes)
    assert stats["CPT"]["codes"] == len(load_starter_lexicon())
    assert kb.versions == {
        "ICD10CM": "FY2026 (April 1, 2026 update)",
        "ICD10CM_INDEX": "FY2025",
        "HCPCS": "2020",
        "CPT": stats["CPT"]["version"],
    }
    assert kb.versions["CPT"].startswith("starter ")
    index = stats["ICD10CM_INDEX"]
    assert index["by_source"]["index"] > 80_000
    assert set(index["by_source"]) == {"index", "external", "neoplasm", "drug"}
    assert index["entries"] == len(kb.index_entries)
    # FY2025 index against the FY2026 tabular: every index code still exists.
    assert index["codes_not_in_tabular"] == 0
    assert "RT" in kb.modifiers and "25" in kb.modifiers


# -- lookup ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "system", "code", "billable", "title_start"),
    [
        ("S93.401A", "ICD10CM", "S93.401A", True, "Sprain of unspecified ligament of right ankle,"),
        ("s93401a", "ICD10CM", "S93.401A", True, "Sprain of unspecified ligament of right ankle"),
        ("E11.9", "ICD10CM", "E11.9", True, "Type 2 diabetes mellitus without complications"),
        ("e119", "ICD10CM", "E11.9", True, "Type 2 diabetes mellitus"),
        ("I10", "ICD10CM", "I10", True, "Essential (primary) hypertension"),
        ("T14.90XA", "ICD10CM", "T14.90XA", True, "Injury, unspecified, initial encounter"),
        ("S93.4", "ICD10CM", "S93.4", False, "Sprain of ankle"),
        ("l1906", "HCPCS", "L1906", True, "Ankle foot orthosis"),
        ("99213", "CPT", "99213", True, "Office or outpatient visit, established patient"),
        ("QA0", "ICD10CM", "QA0", False, "Neurodevelopmental disorders"),
    ],
)  # fmt: skip
def test_store_lookup_known_codes(
    kb: KnowledgeBase, typed: str, system: str, code: str, billable: bool, title_start: str
) -> None:
    rec = kb.lookup(typed)
    assert (rec.code, rec.system, rec.billable) == (code, system, billable)
    assert rec.title.startswith(title_start)
    assert kb.get(typed) is rec
    assert typed in kb


def test_store_hcpcs_shaped_icd_code(kb: KnowledgeBase) -> None:
    # "S9340" is a HCPCS code; typed with system ICD10CM it reads as S93.40.
    assert kb.lookup("S9340").system == "HCPCS"
    assert kb.lookup("S9340", "ICD10CM").code == "S93.40"
    assert kb.lookup("S93401").code == "S93.401"  # not HCPCS-shaped: ICD-10-CM


@pytest.mark.parametrize(
    ("typed", "error", "message"),
    [
        ("", MalformedCodeError, "empty"),
        ("A00-A09", MalformedCodeError, "not a valid"),
        ("E11.99", UnknownCodeError, "did you mean E11.9"),
        ("S93.409B", UnknownCodeError, "S93.409 exists, with codes S93.409A, S93.409D, S93.409S"),
        ("E1199", UnknownCodeError, "not a HCPCS code .*E11.99 is not an ICD-10-CM code"),
        ("99999", UnknownCodeError, "not a CPT code"),
    ],
)
def test_store_lookup_errors(kb: KnowledgeBase, typed: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        kb.lookup(typed)
    assert kb.get(typed) is None
    assert typed not in kb


# -- hierarchy -------------------------------------------------------------------------------------
def test_store_hierarchy(kb: KnowledgeBase) -> None:
    assert [r.code for r in kb.ancestors("S93.401A")] == ["S93.401", "S93.40", "S93.4", "S93"]
    assert [r.code for r in kb.ancestors("T14.90XA")] == ["T14.90", "T14.9", "T14"]
    assert kb.ancestors("E11") == []
    assert [r.code for r in kb.children("S93.401")] == ["S93.401A", "S93.401D", "S93.401S"]
    assert [r.code for r in kb.children("S93.40")] == ["S93.401", "S93.402", "S93.409"]
    assert kb.children("S93.401A") == []
    descendants = kb.billable_descendants("S93.40")
    assert len(descendants) == 9 and all(r.billable for r in descendants)
    assert [r.code for r in kb.billable_descendants("E11.9")] == ["E11.9"]
    assert len(kb.billable_descendants("E11")) == len(
        [r for r in kb.iter_codes("ICD10CM") if r.billable and r.code.startswith("E11")]
    )
    header = kb.header("S90-S99")
    assert header is not None and header.title == "Injuries to the ankle and foot"


def test_store_iter_codes(kb: KnowledgeBase) -> None:
    icd = list(kb.iter_codes("ICD10CM"))
    assert icd[0].code == "A00" and icd[1].code == "A00.0"
    assert {r.system for r in kb.iter_codes("HCPCS")} == {"HCPCS"}
    assert sum(1 for _ in kb.iter_codes()) == sum(v["codes"] for k, v in kb.stats().items() if k != "ICD10CM_INDEX")


# -- 7th characters --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "seventh", "expected"),
    [
        ("T14.90", "A", "T14.90XA"),
        ("t1490", "a", "T14.90XA"),
        ("T14.90X", "D", "T14.90XD"),
        ("S93.401", "A", "S93.401A"),
        ("T07", "S", "T07.XXXS"),
        ("S06.1X7", "A", "S06.1X7A"),
    ],
)
def test_store_complete(kb: KnowledgeBase, code: str, seventh: str, expected: str) -> None:
    assert kb.complete(code, seventh) == expected
    assert kb.lookup(expected).billable


@pytest.mark.parametrize(
    ("code", "seventh", "error", "message"),
    [
        (
            "S52.5",
            "A",
            InvalidSeventhCharacterError,
            "S52.5 is not a leaf; choose one of its codes",
        ),
        ("E11.9", "A", InvalidSeventhCharacterError, "E11.9 takes no 7th character .*category E11"),
        (
            "S93.401",
            "Z",
            InvalidSeventhCharacterError,
            r"allowed: A \(initial encounter\), D .*, S",
        ),
        ("S06.1X7", "D", InvalidSeventhCharacterError, r"allowed: A \(initial encounter\)$"),
        ("S93.401A", "A", InvalidSeventhCharacterError, "already has its 7th character"),
        ("S93.408", "A", UnknownCodeError, "S93.408 is not an ICD-10-CM code"),
        ("S93.401", "AB", MalformedCodeError, "single 7th character"),
        ("??", "A", MalformedCodeError, "not a valid"),
    ],
)
def test_store_complete_errors(
    kb: KnowledgeBase, code: str, seventh: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        kb.complete(code, seventh)


def test_store_seventh_characters(kb: KnowledgeBase) -> None:
    assert kb.seventh_characters("S93.401") == {
        "A": "initial encounter",
        "D": "subsequent encounter",
        "S": "sequela",
    }
    assert kb.seventh_characters("S93") is not None
    assert kb.seventh_characters("E11.9") is None
    assert set(kb.seventh_characters("S52.501") or {}) == set("ABCDEFGHJKMNPQRS")
    # A subcategory's own table replaces its category's (torus fractures are never open).
    assert set(kb.seventh_characters("S52.521") or {}) == set("ADGKPS")


# -- Excludes --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b", "owner", "note"),
    [
        ("E11.9", "E10.9", "E11", "type 1 diabetes mellitus (E10.-)"),
        ("E10.9", "E11.9", "E10", "type 2 diabetes mellitus (E11.-)"),
        ("E11.65", "E08.65", "E11", "diabetes mellitus due to underlying condition (E08.-)"),
        (
            "O24.410",
            "E11.9",
            "E11",
            "gestational diabetes (O24.4-)",
        ),  # the note sits on b's category
        ("T14.90XA", "T07.XXXA", "T14", "multiple unspecified injuries (T07)"),  # ancestor of a
        ("E11.9", "P70.2", "E11", "neonatal diabetes mellitus (P70.2)"),
    ],
)
def test_store_excludes1_conflicts(kb: KnowledgeBase, a: str, b: str, owner: str, note: str) -> None:
    assert kb.excludes1_conflict(a, b) == note
    assert kb.excludes1_source(a, b) == (owner, note)
    assert kb.excludes1_conflict(b, a) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [("E11.9", "I10"), ("E11.9", "E11.65"), ("S93.401A", "S93.402A"), ("S93.401A", "S96.001A")],
)
def test_store_excludes1_no_conflict(kb: KnowledgeBase, a: str, b: str) -> None:
    assert kb.excludes1_conflict(a, b) is None


def test_store_excludes2(kb: KnowledgeBase) -> None:
    assert kb.excludes2_notes("S93.401A", "S96.001A") == "strain of muscle and tendon of ankle and foot (S96.-)"
    assert kb.excludes2_notes("S93.401A", "S86.011A") == "injury of Achilles tendon (S86.0-)"
    # Chapter 9's Excludes2 covers a whole range of chapter 4.
    assert kb.excludes2_notes("E11.9", "I10") == "endocrine, nutritional and metabolic diseases (E00-E88)"
    assert kb.excludes2_notes("S93.401A", "E11.9") is None


def test_store_excludes_unknown_code(kb: KnowledgeBase) -> None:
    with pytest.raises(UnknownCodeError):
        kb.excludes1_conflict("E11.9", "E11.99")


@pytest.mark.parametrize(
    ("note", "ranges"),
    [
        ("injury of Achilles tendon (S86.0-)", (("S860", "S860"),)),
        ("pain in joint (M25.57-)", (("M2557", "M2557"),)),
        ("intestinal infectious diseases (A00-A09)", (("A00", "A09"),)),
        ("fracture of ankle (S82.-)", (("S82", "S82"),)),
        ("alcohol abuse (F10.1-)", (("F101", "F101"),)),
        ("open fracture of pelvis (S32.1--S32.9 with 7th character B)", (("S321", "S329"),)),
        ("diabetes (E08-E13, O24.-)", (("E08", "E13"), ("O24", "O24"))),
        ("any associated open wound", None),
    ],
)
def test_store_parse_note_references(note: str, ranges: tuple[tuple[str, str], ...] | None) -> None:
    ref = parse_note_references(note, "X00")
    assert (ref.ranges if ref else None) == ranges


def test_store_note_references_cover() -> None:
    ref = NoteReference("x", "S93", (("A00", "A09"), ("S82", "S82")))
    assert ref.covers("A099") and ref.covers("S82001A") and not ref.covers("A10") and not ref.covers("S83")
    # A note never excludes its own family.
    assert parse_note_references("other ankle sprain (S93.4-)", "S93.40") is None


# -- Alphabetic Index ------------------------------------------------------------------------------
def test_store_index_paths_for(kb: KnowledgeBase) -> None:
    paths = {(e.path, e.code, e.incomplete) for e in kb.index_paths_for("S93.401A")}
    assert (("Sprain", "ankle"), "S93.40", True) in paths
    assert all(code in ("S93.40", "S93.4", "S93", "S93.401") for _, code, _ in paths)
    e119 = {e.path for e in kb.index_paths_for("e119")}
    assert ("Diabetes, diabetic", "type 2") in e119
    # A 7th-character code is reached through the entry that gives its 6-character base.
    assert ("Injury",) in {e.path for e in kb.index_paths_for("T14.90XA")}
    drug = {(e.path, e.column) for e in kb.index_paths_for("T39.1X1A")}
    assert (("Acetaminophen",), "poisoning accidental") in drug
    assert kb.index_paths_for("L1906") == [] and kb.index_paths_for("nonsense") == []


# -- search ----------------------------------------------------------------------------------------
def test_store_search_sprain_of_right_ankle(kb: KnowledgeBase) -> None:
    hits = kb.search("sprain of right ankle", limit=12)
    top = [h.code for h in hits]
    assert set(top[:5]) == {"S93.401A", "S93.411A", "S93.421A", "S93.431A", "S93.491A"}
    assert "S93.401" in top
    assert hits[0].billable and hits[0].score >= hits[-1].score
    assert "right ankle" in hits[0].title


@pytest.mark.parametrize(
    ("text", "system", "expected", "within"),
    [
        ("type 2 diabetes", None, "E11.9", 1),
        ("ankle brace", "HCPCS", "L1906", 3),
        ("office visit established patient", "CPT", "99213", 5),
        ("poisoning by acetaminophen accidental", None, "T39.1X1A", 1),
        ("subsequent encounter sprain right ankle", None, "S93.401D", 5),
        ("essential hypertension", None, "I10", 1),
        ("T14.90XA", None, "T14.90XA", 1),
    ],
)
def test_store_search_tops(kb: KnowledgeBase, text: str, system: str | None, expected: str, within: int) -> None:
    hits = kb.search(text, system=system, limit=10)  # type: ignore[arg-type]
    assert expected in [h.code for h in hits[:within]]
    if system:
        assert {h.system for h in hits} == {system}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Sprain of the RIGHT ankle", ["sprain", "right", "ankle"]),
        ("rt ankle sprains", ["right", "ankle", "sprain"]),
        ("T2DM w/ injuries", ["type", "2", "diabete", "mellitus", "injury"]),
        ("Type II diabetes, hepatitis B", ["type", "2", "diabete", "hepatitis", "b"]),
        ("Sézary disease NOS", ["sezary", "disease"]),
        ("glass", ["glass"]),
    ],
)
def test_store_search_normalize_words(text: str, words: list[str]) -> None:
    assert normalize_words(text) == words


def test_store_search_edge_cases(kb: KnowledgeBase) -> None:
    assert kb.search("of the and") == []
    assert kb.search("zzzqqq") == []
    assert kb.search("ankle", limit=0) == []
    assert len(kb.search("fracture", limit=7)) == 7


def test_store_search_index_is_built_once(kb: KnowledgeBase) -> None:
    # How fast a search is belongs to benchmarks/kb.py; here: the index is built on the first
    # search and reused by every later one.
    kb.search("warm up")
    built = kb.search_build_seconds
    assert built is not None
    for text in ("sprain of right ankle", "type 2 diabetes", "malignant neoplasm of left breast", "fracture"):
        assert kb.search(text)
    assert kb.search_build_seconds == built


# -- save / load -----------------------------------------------------------------------------------
def test_store_round_trip(kb: KnowledgeBase, kb_dir: Path, tmp_path: Path) -> None:
    manifest = kb.save(tmp_path / "again")
    again = KnowledgeBase.load(tmp_path / "again")
    assert again.stats() == kb.stats()
    assert again.versions == kb.versions
    assert list(again.iter_codes()) == list(kb.iter_codes())
    assert again.index_entries == kb.index_entries
    assert again.modifiers == kb.modifiers
    # Same content, same bytes: the artefact is deterministic (only manifest.json has a date).
    original = read_manifest(kb_dir)
    assert manifest.files == original.files
    assert manifest.kind == "kb" and manifest.name == "codesuggest-kb"
    assert {"path", "sha256", "role"} <= set(manifest.training_data[0])
    assert not any(ref["path"].startswith("/") for ref in manifest.training_data)


def test_store_tampered_artefact_is_refused(kb_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "kb"
    shutil.copytree(kb_dir, copy)
    path = copy / "hcpcs.json.gz"
    data = gzip.decompress(path.read_bytes()).replace(b"Ankle foot orthosis", b"Ankle foot orthotic")
    path.write_bytes(gzip.compress(data))
    with pytest.raises(ArtefactError, match="does not match its manifest hash"):
        KnowledgeBase.load(copy)


def test_store_missing_artefact(tmp_path: Path) -> None:
    with pytest.raises(ArtefactError, match="make kb"):
        KnowledgeBase.load(tmp_path / "nothing")


def test_store_load_rejects_wrong_content(kb_dir: Path, tmp_path: Path) -> None:
    from pipeline.manifest import write_manifest

    copy = tmp_path / "kb"
    shutil.copytree(kb_dir, copy)
    (copy / "cpt.json.gz").write_bytes(gzip.compress(b'{"schema": "other/1"}'))
    write_manifest(copy, read_manifest(copy))  # a consistent manifest over a wrong file
    with pytest.raises(ArtefactError, match=r"cpt\.json\.gz: expected schema"):
        KnowledgeBase.load(copy)


def test_store_committed_artefact_matches_a_fresh_build(kb: KnowledgeBase, kb_dir: Path) -> None:
    committed = KnowledgeBase.load(default_kb_dir())
    assert committed.versions == kb.versions
    assert committed.stats() == kb.stats()
    manifest = read_manifest(default_kb_dir())
    stale = sorted(name for name, digest in read_manifest(kb_dir).files.items() if manifest.files.get(name) != digest)
    assert not stale, f"models/kb is out of date ({stale}): rebuild it with `make kb`"
    assert sum((default_kb_dir() / rel).stat().st_size for rel in manifest.files) < 15 * 2**20
    assert manifest.params == {"cpt_source": "starter"}
