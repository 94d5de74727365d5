"""End-to-end table over the default model's spaCy pipeline: mentions, context and candidates.

Each row: a sentence or short note, a phrase that must be found as (part of) a mention, the
assertions that mention must carry, codes of which at least one must be among its candidates,
and attributes it must have. ``None`` in a column means "not checked".
"""

from __future__ import annotations

from typing import Any

import pytest
from spacy.language import Language
from spacy.tokens import Doc, Span

from pipeline.errors import EmptyNoteError
from pipeline.nlp.annotate import annotate_text
from pipeline.nlp.extensions import MENTIONS, assertions_of

NEG = {"negated": True}
AFF = {"negated": False, "family": False, "hypothetical": False}

# (text, phrase, assertions, any-of candidate codes, attributes)
CASES: list[tuple[str, str, dict[str, bool] | None, set[str] | None, dict[str, Any] | None]] = [
    # negation triggers
    ("Patient denies chest pain.", "chest pain", NEG, {"R07.9"}, None),
    ("No evidence of pneumonia on the film.", "pneumonia", NEG, {"J18.9"}, None),
    ("Pulmonary embolism was ruled out.", "embolism", NEG, {"I26.99"}, None),
    ("Negative for fever and chills.", "fever", NEG, {"R50.9"}, None),
    ("She has no cough.", "cough", NEG, {"R05.9"}, None),
    ("Without dysuria or hematuria.", "dysuria", NEG, {"R30.0"}, None),
    ("Denies shortness of breath.", "shortness of breath", NEG, {"R06.02"}, None),
    ("X-ray shows no fracture.", "fracture", NEG, None, None),
    ("Absence of lymphadenopathy.", "lymphadenopathy", NEG, {"R59.9"}, None),
    # pseudo-triggers must not negate
    ("No change in her hypertension.", "hypertension", {"negated": False}, {"I10"}, None),
    ("Gram negative rods grew; diagnosis is pneumonia.", "pneumonia", {"negated": False}, {"J18.9"}, None),
    ("Not only asthma but also eczema.", "asthma", {"negated": False}, {"J45.909"}, None),
    ("No increase in edema of the legs.", "edema", {"negated": False}, None, None),
    # historical
    ("History of kidney stones.", "kidney stones", {"historical": True}, {"N20.0"}, None),
    ("Status post appendectomy in 2015, history of appendicitis.", "appendicitis", {"historical": True}, None, None),
    ("She has a past history of stroke.", "stroke", {"historical": True}, {"I63.9"}, None),
    # family
    ("Mother had breast cancer.", "breast cancer", {"family": True}, None, None),
    ("Family history of diabetes mellitus.", "diabetes", {"family": True}, None, None),
    ("His father has coronary artery disease.", "coronary artery disease", {"family": True}, {"I25.10"}, None),
    # hypothetical
    ("Return if fever develops.", "fever", {"hypothetical": True}, {"R50.9"}, None),
    ("Call if chest pain recurs.", "chest pain", {"hypothetical": True}, {"R07.9"}, None),
    ("In case of vomiting, go to the emergency room.", "vomiting", {"hypothetical": True}, None, None),
    # uncertain
    ("Possible pneumonia in the right lower lobe.", "pneumonia", {"uncertain": True}, {"J18.9"}, None),
    ("Probable urinary tract infection.", "urinary tract infection", {"uncertain": True}, {"N39.0"}, None),
    ("Rule out appendicitis.", "appendicitis", {"uncertain": True}, None, None),
    ("Suspected deep vein thrombosis of the left leg.", "deep vein thrombosis", {"uncertain": True}, None, None),
    # affirmed diagnoses and their candidates
    ("Assessment: essential hypertension.", "hypertension", AFF, {"I10"}, None),
    ("Type 2 diabetes mellitus without complications.", "diabetes", AFF, {"E11.9"}, None),
    ("Acute cystitis.", "cystitis", AFF, {"N30.00", "N30.90", "N30.01"}, None),
    ("Community acquired pneumonia.", "pneumonia", AFF, {"J18.9"}, None),
    ("Major depressive disorder, single episode.", "depressive disorder", AFF, {"F32.9", "F32.A"}, None),
    ("Chronic obstructive pulmonary disease with acute exacerbation.", "obstructive pulmonary", AFF, {"J44.1"}, None),
    ("Iron deficiency anemia.", "anemia", AFF, {"D50.9"}, None),
    ("Hypothyroidism, on levothyroxine.", "Hypothyroidism", AFF, {"E03.9"}, None),
    ("Gastroesophageal reflux disease.", "reflux", AFF, {"K21.9"}, None),
    ("Malignant neoplasm of the colon.", "neoplasm", AFF, {"C18.9"}, None),
    ("Metastatic disease to the liver.", "liver", None, {"C78.7"}, None),
    # abbreviations from the lexicon
    ("PMH: HTN, HLD, T2DM.", "HTN", None, {"I10"}, None),
    ("Known COPD and CHF.", "COPD", AFF, {"J44.9"}, None),
    ("New onset AFib.", "AFib", AFF, {"I48.91"}, None),
    ("Hx of CAD.", "CAD", None, {"I25.10"}, None),
    # abbreviations defined in the note (scispaCy AbbreviationDetector)
    ("Benign prostatic hyperplasia (BPH) was seen. The BPH is mild.", "BPH", AFF, {"N40.0"}, None),
    ("Urinary tract infection (UTI). UTI treated with nitrofurantoin.", "UTI", AFF, {"N39.0"}, None),
    # laterality and episode -> completion
    ("Sprain of the right ankle, initial encounter.", "Sprain", AFF, {"S93.401A"}, {"laterality": "right"}),
    ("Sprained L ankle, follow-up visit.", "ankle", None, {"S93.402D"}, {"laterality": "left"}),
    ("Right ankle sprain.", "ankle sprain", AFF, {"S93.401A"}, {"laterality": "right"}),
    ("Bilateral primary osteoarthritis of knee.", "osteoarthritis", AFF, {"M17.0"}, {"laterality": "bilateral"}),
    ("Left-sided otitis media.", "otitis media", AFF, {"H66.92"}, {"laterality": "left"}),
    ("Pain in right knee.", "knee", AFF, {"M25.561"}, {"laterality": "right"}),
    # external causes
    ("She slipped on ice and fell.", "fell", None, {"W19.XXXA", "W00.0XXA", "W01.0XXA"}, None),
    ("Injured in a motor vehicle accident.", "motor vehicle accident", None, {"V89.2XXA"}, None),
    # procedures and supplies
    ("X-ray of the right ankle, three views.", "X-ray", None, {"73610"}, {"views": 3}),
    ("Chest x-ray, two views.", "x-ray", None, {"71046"}, None),
    ("Fitted with crutches.", "crutches", None, {"E0114", "E0110", "E0112"}, None),
    ("Ketorolac 30 mg IM given.", "Ketorolac", None, {"J1885"}, None),
    ("Urinalysis by dipstick.", "Urinalysis", None, {"81002", "81003", "81001", "81000"}, None),
    ("Electrocardiogram with interpretation.", "Electrocardiogram", None, {"93000"}, None),
    # sections
    ("FAMILY HISTORY:\nDiabetes in her father.\n", "Diabetes", {"family": True}, None, {"section": "family_history"}),
    ("Past Medical History:\nAsthma.\n", "Asthma", {"historical": True}, None, {"section": "past_medical_history"}),
    ("ASSESSMENT/PLAN: Acute bronchitis.", "bronchitis", AFF, {"J20.9"}, {"section": "assessment_plan"}),
    # odd formatting
    ("ASSESSMENT: TYPE 2 DIABETES MELLITUS. HYPERTENSION.", "HYPERTENSION", AFF, {"I10"}, None),
    ("pt w cough fever x3 days no sob", "cough", AFF, {"R05.9"}, None),
    ("Problems:\r\n- Hypertension\r\n- Hyperlipidemia\r\n", "Hyperlipidemia", AFF, {"E78.5"}, None),
    ("• Asthma\n• Eczema\n", "Eczema", AFF, {"L30.9"}, None),
    ("Fièvre? Fever of 38.5 °C since Monday.", "Fever", AFF, {"R50.9"}, None),
    ("Diagnosis: oesophageal haemorrhage.", "haemorrhage", AFF, {"K22.89", "K22.8"}, None),
]


def _find(doc: Doc, phrase: str) -> list[Span]:
    lower = phrase.lower()
    start = doc.text.lower().find(lower)
    assert start >= 0, f"phrase {phrase!r} not in text"
    end = start + len(phrase)
    return [s for s in doc.spans[MENTIONS] if s.start_char < end and s.end_char > start]


def test_pipeline_table_has_enough_cases() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize(("text", "phrase", "assertions", "codes", "attributes"), CASES)
def test_pipeline_table_case(
    nlp: Language,
    text: str,
    phrase: str,
    assertions: dict[str, bool] | None,
    codes: set[str] | None,
    attributes: dict[str, Any] | None,
) -> None:
    doc = nlp(text)
    spans = _find(doc, phrase)
    assert spans, f"no mention over {phrase!r}: {[s.text for s in doc.spans[MENTIONS]]}"
    if codes is not None:
        found = {c.code for s in spans for c in (s._.cs_candidates or [])}
        assert found & codes, f"none of {codes} among {sorted(found)}"
        spans = [s for s in spans if {c.code for c in s._.cs_candidates or []} & codes]
    if assertions is not None:
        assert any(all(assertions_of(s)[k] == v for k, v in assertions.items()) for s in spans), [
            (s.text, assertions_of(s)) for s in spans
        ]
    for key, value in (attributes or {}).items():
        attr = {"laterality": "cs_laterality", "views": "cs_views", "section": "cs_section"}[key]
        assert any(getattr(s._, attr) == value for s in spans), [(s.text, getattr(s._, attr)) for s in spans]


@pytest.mark.parametrize("text", ["", "   ", "\n\t \r\n"])
def test_pipeline_annotate_rejects_empty_notes(nlp: Language, text: str) -> None:
    with pytest.raises(EmptyNoteError, match="empty"):
        annotate_text(nlp, text)


def test_pipeline_annotate_offsets_point_into_the_note(nlp: Language) -> None:
    text = "HPI: Right ankle sprain after a fall.\r\nNo fracture. Café owner."
    document = annotate_text(nlp, text)
    assert document["mentions"]
    for m in document["mentions"]:
        assert text[m["start"] : m["end"]] == m["text"]
        assert set(m["assertions"]) == {"negated", "historical", "family", "hypothetical", "uncertain"}
