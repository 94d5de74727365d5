"""Tests of cs_attributes: laterality, episode, acuity, site, views, fracture details, encounter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc

from pipeline.errors import RuleFileError
from pipeline.nlp.components import cs_attributes, cs_context, cs_sections, cs_sentences  # noqa: F401
from pipeline.nlp.extensions import MENTIONS, assertions_of
from pipeline.rulefile import read_rule_text

pytestmark = pytest.mark.filterwarnings(r"ignore:.*\[W036\]")

COMPONENTS = ("cs_sentences", "cs_sections", "cs_context", "cs_attributes")


@pytest.fixture(scope="module")
def nlp() -> Language:
    pipeline = spacy.blank("en")
    for name in COMPONENTS:
        pipeline.add_pipe(name)
    pipeline.initialize()
    return pipeline


def annotate(nlp: Language, text: str, mentions: list[tuple[str, str]]) -> Doc:
    """Run the pipeline on ``text`` with mentions for (phrase, kind) pairs (first occurrence)."""
    doc = nlp.make_doc(text)
    spans = []
    for phrase, kind in mentions:
        start = text.lower().index(phrase.lower())
        span = doc.char_span(start, start + len(phrase), label=kind.upper())
        assert span is not None, phrase
        span._.cs_kind = kind
        spans.append(span)
    doc.spans[MENTIONS] = spans
    for _, component in nlp.pipeline:
        doc = component(doc)
    return doc


def _attribute(nlp: Language, text: str, phrase: str, kind: str, name: str) -> Any:
    doc = annotate(nlp, text, [(phrase, kind)])
    mention = doc.spans[MENTIONS][0]
    if name.startswith("attributes."):
        return mention._.cs_attributes.get(name.split(".", 1)[1])
    return getattr(mention._, name)


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        ("Sprain of R ankle.", "sprain of R ankle", "right"),
        ("R ankle sprain.", "ankle sprain", "right"),
        ("Sprain of R ankle.", "sprain", "right"),
        ("Left-sided chest pain.", "chest pain", "left"),
        ("Right sided weakness.", "weakness", "right"),
        ("Pain in bilateral knees.", "pain", "bilateral"),
        ("Pain in both knees.", "pain", "bilateral"),
        ("Knee effusion b/l.", "knee effusion", "bilateral"),
        ("lt wrist sprain", "wrist sprain", "left"),
        ("He left the office with knee pain.", "knee pain", None),
        ("Patient left against advice; knee pain.", "knee pain", None),
        ("Right ankle sprain and left knee pain.", "knee pain", "left"),
        ("Right ankle sprain and left knee pain.", "ankle sprain", "right"),
        ("On 2 L nasal cannula.", "nasal cannula", None),
        ("R/O fracture.", "fracture", None),
        ("Knee pain; the left one is fine.", "knee pain", None),
        ("X-ray of the right ankle, 3 views.", "x-ray", "right"),
    ],
)
def test_attributes_laterality(nlp: Language, text: str, phrase: str, expected: str | None) -> None:
    kind = "procedure" if phrase == "x-ray" else "diagnosis"
    assert _attribute(nlp, text, phrase, kind, "cs_laterality") == expected


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        ("Initial encounter for ankle sprain.", "ankle sprain", "initial"),
        ("Presents after a fall with wrist fracture.", "wrist fracture", "initial"),
        ("Follow-up visit for ankle fracture, healing well.", "ankle fracture", "subsequent"),
        ("Cast check for radius fracture.", "radius fracture", "subsequent"),
        ("Suture removal, laceration of hand.", "laceration", "subsequent"),
        ("Scar from old burn of hand.", "scar", "sequela"),
        ("Contracture as a sequela of the burn.", "contracture", "sequela"),
        # a plan to follow up is not a subsequent encounter
        ("Ankle sprain. Follow up in 2 weeks.", "ankle sprain", None),
        ("Ankle sprain. Follow-up with orthopedics.", "ankle sprain", None),
        # the note-level value applies to mentions without a cue of their own
        ("Follow-up visit.\nDistal radius fracture.", "radius fracture", "subsequent"),
        (
            "Reason for visit: recheck\nWrist pain.\nDistal radius fracture.",
            "radius fracture",
            "subsequent",
        ),
        # ... but not from deep inside a narrative ("during follow-up" in a case report)
        (
            "Fell. Wrist pain. Radius fracture. Cast applied. During follow-up, well.",
            "radius fracture",
            None,
        ),
        ("Ankle sprain.", "ankle sprain", None),
    ],
)
def test_attributes_episode(nlp: Language, text: str, phrase: str, expected: str | None) -> None:
    assert _attribute(nlp, text, phrase, "diagnosis", "cs_episode") == expected


def test_attributes_episode_not_set_on_procedures(nlp: Language) -> None:
    assert _attribute(nlp, "Follow-up x-ray of the ankle.", "x-ray", "procedure", "cs_episode") is None


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        ("Acute bronchitis.", "bronchitis", "acute"),
        ("Chronic kidney disease.", "kidney disease", "chronic"),
        ("Acute on chronic kidney failure.", "kidney failure", "acute_on_chronic"),
        ("Acute exacerbation of chronic bronchitis.", "bronchitis", "acute_on_chronic"),
        ("Subacute thyroiditis.", "thyroiditis", "subacute"),
        ("Long-standing back pain.", "back pain", "chronic"),
        ("Bronchitis, not acute.", "bronchitis", None),  # cues count in or before the mention only
        ("Asthma.", "asthma", None),
    ],
)
def test_attributes_acuity(nlp: Language, text: str, phrase: str, expected: str | None) -> None:
    assert _attribute(nlp, text, phrase, "diagnosis", "cs_acuity") == expected


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        ("Sprain of R ankle.", "sprain", ["ankle"]),
        ("Right ankle sprain and left knee pain.", "knee pain", ["knee"]),
        ("Pain in both knees and hips.", "pain", ["knee", "hip"]),
        ("Nondisplaced fracture of the distal radius.", "fracture", ["forearm"]),
        ("Headache.", "headache", []),
    ],
)
def test_attributes_site(nlp: Language, text: str, phrase: str, expected: list[str]) -> None:
    assert _attribute(nlp, text, phrase, "diagnosis", "cs_site") == expected


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        ("X-ray of the right ankle, 3 views.", "x-ray", 3),
        ("XR ankle 2V.", "XR", 2),
        ("X-ray wrist AP, lateral and oblique.", "x-ray", 3),
        ("Chest x-ray PA and lateral.", "x-ray", 2),
        ("Knee radiographs, three views.", "radiographs", 3),
        ("Ankle x-ray, minimum of 3 views.", "x-ray", 3),
        ("Chest x-ray, single view.", "x-ray", 1),
        ("Ankle x-ray.\nTwo views were obtained.", "x-ray", 2),
        ("Ankle x-ray.", "x-ray", None),
        ("Arthroscopy of the knee, 3 portals.", "arthroscopy", None),
    ],
)
def test_attributes_views(nlp: Language, text: str, phrase: str, expected: int | None) -> None:
    assert _attribute(nlp, text, phrase, "procedure", "cs_views") == expected


def test_attributes_complete_series(nlp: Language) -> None:
    doc = annotate(nlp, "Complete x-ray series of the ankle.", [("x-ray", "procedure")])
    mention = doc.spans[MENTIONS][0]
    assert mention._.cs_views is None
    assert mention._.cs_attributes["views_complete"] is True


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("Nondisplaced fracture of the distal radius, closed.", "displacement", "nondisplaced"),
        ("Displaced fracture of the left ankle.", "displacement", "displaced"),
        ("Nondisplaced fracture of the distal radius, closed.", "open_closed", "closed"),
        ("Open fracture of the tibia with nonunion.", "open_closed", "open"),
        ("Open fracture of the tibia with nonunion.", "healing", "nonunion"),
        ("Fracture of the radius with delayed healing.", "healing", "delayed"),
        ("Fracture of the radius, closed reduction.", "open_closed", None),
        ("Follow-up of radius fracture.\nX-ray shows routine healing.", "healing", "routine"),
    ],
)
def test_attributes_fracture_details(nlp: Language, text: str, name: str, expected: str | None) -> None:
    assert _attribute(nlp, text, "fracture", "diagnosis", f"attributes.{name}") == expected


def test_attributes_fracture_details_only_on_fractures(nlp: Language) -> None:
    doc = annotate(nlp, "Displaced fracture and open wound of the leg.", [("wound", "diagnosis")])
    assert doc.spans[MENTIONS][0]._.cs_attributes == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "New patient visit in the office. Total time spent 45 minutes. Outside films reviewed.",
            {
                "new_patient": True,
                "total_minutes": 45,
                "settings": ["office"],
                "imaging_interpretation_only": True,
            },
        ),
        (
            "Established patient. I spent 25 minutes with the patient.",
            {
                "new_patient": False,
                "total_minutes": 25,
                "settings": [],
                "imaging_interpretation_only": False,
            },
        ),
        (
            "Seen in the ED. 30 minutes were spent on counseling. Read the x-ray taken at the urgent care.",
            {
                "new_patient": None,
                "total_minutes": 30,
                "settings": ["emergency_department"],
                "imaging_interpretation_only": True,
            },
        ),
        (
            "Ankle sprain.",
            {
                "new_patient": None,
                "total_minutes": None,
                "settings": [],
                "imaging_interpretation_only": False,
            },
        ),
        (
            "",
            {
                "new_patient": None,
                "total_minutes": None,
                "settings": [],
                "imaging_interpretation_only": False,
            },
        ),
    ],
)
def test_attributes_encounter_cues(nlp: Language, text: str, expected: dict[str, Any]) -> None:
    encounter = annotate(nlp, text, [])._.cs_encounter
    assert {key: encounter[key] for key in expected} == expected


def test_attributes_encounter_episode_and_healing(nlp: Language) -> None:
    encounter = annotate(nlp, "Follow-up visit. Fracture with routine healing.", [])._.cs_encounter
    assert (encounter["episode"], encounter["healing"]) == ("subsequent", "routine")


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        ("Family history:\nDiabetes\nHPI: knee pain", "Diabetes", {"family"}),
        ("PMH: asthma, no diabetes.", "asthma", {"historical"}),
        ("PMH: asthma, no diabetes.", "diabetes", {"negated"}),
        ("PAST SURGICAL HISTORY\nAppendectomy", "Appendectomy", {"historical"}),
        ("HPI: knee pain", "knee pain", set()),
    ],
)
def test_attributes_section_assertions(nlp: Language, text: str, phrase: str, expected: set[str]) -> None:
    doc = annotate(nlp, text, [(phrase, "diagnosis")])
    mention = doc.spans[MENTIONS][0]
    assert {name for name, value in assertions_of(mention).items() if value} == expected
    assert mention._.cs_section == doc[mention.start]._.cs_section


def test_attributes_keep_attributes_set_before(nlp: Language) -> None:
    doc = nlp.make_doc("Displaced fracture.")
    span = doc[1:2]
    span._.cs_kind = "diagnosis"
    span._.cs_attributes = {"source": "test"}
    doc.spans[MENTIONS] = [span]
    for _, component in nlp.pipeline:
        doc = component(doc)
    assert doc.spans[MENTIONS][0]._.cs_attributes == {"source": "test", "displacement": "displaced"}


@pytest.mark.parametrize("text", ["", "   ", "No mentions here."])
def test_attributes_without_mentions(nlp: Language, text: str) -> None:
    doc = nlp(text)
    assert doc._.cs_encounter["new_patient"] is None


def test_attributes_round_trip_to_disk(nlp: Language, tmp_path: Path) -> None:
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "cs_attributes" / "attribute_rules.json").is_file()
    text = "New patient. Acute sprain of R ankle, initial encounter. X-ray ankle 3 views. Displaced fracture."
    mentions = [
        ("sprain of R ankle", "diagnosis"),
        ("x-ray", "procedure"),
        ("fracture", "diagnosis"),
    ]
    fields = (
        "cs_laterality",
        "cs_episode",
        "cs_acuity",
        "cs_site",
        "cs_views",
        "cs_attributes",
        "cs_section",
    )

    def read(doc: Doc) -> list[tuple[Any, ...]]:
        return [tuple(getattr(m._, f) for f in fields) for m in doc.spans[MENTIONS]]

    doc_before, doc_after = annotate(nlp, text, mentions), annotate(loaded, text, mentions)
    assert read(doc_after) == read(doc_before)
    assert read(doc_before)[0][:4] == ("right", "initial", "acute", ["ankle"])
    assert doc_after._.cs_encounter == doc_before._.cs_encounter


def _rules_with(tmp_path: Path, change: Any) -> Path:
    text, _ = read_rule_text("attribute_rules.json")
    data = json.loads(text)
    change(data)
    path = tmp_path / "attribute_rules.json"
    groups = ",\n".join(json.dumps(g) for g in data.pop("cue_groups"))
    rest = json.dumps(data)[1:-1]
    path.write_text('{\n"cue_groups": [\n' + groups + "\n],\n" + rest + "\n}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["cue_groups"][1].update(colour="red"),
            r"line 4: cue_groups\[1\]: unknown key 'colour'",
        ),
        (
            lambda d: d["cue_groups"][2].update(target="cs_mood"),
            r"line 5: cue_groups\[2\].target: unknown target 'cs_mood'",
        ),
        (
            lambda d: d["cue_groups"][0].update(scope="paragraph"),
            r"line 3: cue_groups\[0\].scope: unknown scope",
        ),
        (lambda d: d["cue_groups"][0].update(window=[3]), r"cue_groups\[0\].window: missing key 1"),
        (
            lambda d: d["cue_groups"][0]["values"]["left"].append("right"),
            r"'right' is listed for 'right' and 'left'",
        ),
        (
            lambda d: d["cue_groups"][1].update(priority=["sequela"]),
            r"cue_groups\[1\]: pick 'priority' needs",
        ),
        (
            lambda d: d["encounter"]["minutes_patterns"].append("(\\d+"),
            r"encounter.minutes_patterns\[3\]: bad regular",
        ),
        (lambda d: d["encounter"]["minutes_patterns"].append("\\d+ min"), r"exactly one group"),
        (
            lambda d: d["section_assertions"].append({"section": "fh", "set": "is_family"}),
            r"section_assertions\[3\].section: unknown section 'fh'",
        ),
        (lambda d: d.update(extra=1), r"unknown key 'extra'"),
        (
            lambda d: d["cue_groups"][1].update(document_sections=["preamble"]),
            r"cue_groups\[1\].document_sections\[0\]: unknown document_sections 'preamble'",
        ),
    ],
)
def test_attributes_bad_rule_file_is_rejected(tmp_path: Path, change: Any, message: str) -> None:
    path = _rules_with(tmp_path, change)
    component: Any = spacy.blank("en").add_pipe("cs_attributes")
    with pytest.raises(RuleFileError, match=rf"attribute_rules\.json: .*{message}"):
        component.initialize(rules_path=str(path))
