"""Code systems, canonical URLs and the value maps between FHIR and codesuggest.

The project has no web domain of its own. Its canonical URLs (extensions, the operation, the
override-reason code system) sit under ``https://codesuggest.invalid/fhir``: the ``.invalid``
top-level domain is reserved (RFC 6761) and never resolves, so these identifiers can never point
at somebody else's site. They are identifiers, not addresses; the service serves each definition
itself (``GET /fhir/r4/StructureDefinition/{id}``, ``GET /fhir/r4/OperationDefinition/{id}``).
A release with a home of its own changes :data:`CANONICAL_BASE` and nothing else.
"""

from __future__ import annotations

CANONICAL_BASE = "https://codesuggest.invalid/fhir"
FHIR_VERSION = "4.0.1"
FHIR_JSON = "application/fhir+json"

# Code systems of the codes we suggest (HL7 Terminology, THO).
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
SYSTEM_URIS: dict[str, str] = {"ICD10CM": ICD10CM, "CPT": CPT, "HCPCS": HCPCS}

# What each code-set version names (keys of Suggester.code_set_versions) -> (system, label).
CODE_SET_LABELS: dict[str, tuple[str, str]] = {
    "ICD10CM": (ICD10CM, "ICD-10-CM tabular list"),
    "ICD10CM_INDEX": (ICD10CM, "ICD-10-CM Alphabetic Index and tables"),
    "HCPCS": (HCPCS, "HCPCS Level II"),
    "CPT": (CPT, "CPT"),
}

# HL7 code systems used in the output.
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
PROCESS_PRIORITY = "http://terminology.hl7.org/CodeSystem/processpriority"
DIAGNOSIS_TYPE = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype"
PROVENANCE_AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
ISSUE_TYPE = "http://hl7.org/fhir/issue-type"

# Encounter.class in R4 is a Coding from v3 ActCode (ActEncounterCode); EHRs also send the OID.
ACT_CODE_SYSTEMS = frozenset({"http://terminology.hl7.org/CodeSystem/v3-ActCode", "urn:oid:2.16.840.1.113883.5.4"})

# Encounter class -> the coding setting the ICD-10-CM Official Guidelines apply. Inpatient rules
# (Section II/III: principal diagnosis, uncertain diagnoses at discharge coded as if established)
# apply to inpatient admissions only; emergency, observation, short-stay, home and virtual
# encounters are outpatient services under Section IV.
ENCOUNTER_CLASS_SETTING: dict[str, str] = {
    "IMP": "inpatient",  # inpatient encounter
    "ACUTE": "inpatient",  # inpatient acute
    "NONAC": "inpatient",  # inpatient non-acute
    "AMB": "outpatient",  # ambulatory
    "EMER": "outpatient",  # emergency (Section IV: outpatient rules)
    "OBSENC": "outpatient",  # observation (outpatient until an inpatient order)
    "SS": "outpatient",  # short stay
    "PRENC": "outpatient",  # pre-admission
    "HH": "outpatient",  # home health
    "VR": "outpatient",  # virtual
    "FLD": "outpatient",  # field
}

# Patient.gender -> the pipeline's sex.
GENDER_SEX: dict[str, str] = {"male": "male", "female": "female", "other": "unknown", "unknown": "unknown"}

# Extensions defined by this project (each has a StructureDefinition in conformance.py).
EXT_NOTE_SPAN = f"{CANONICAL_BASE}/StructureDefinition/note-span"
EXT_CODING_SUGGESTION = f"{CANONICAL_BASE}/StructureDefinition/coding-suggestion"
EXT_PROCEDURE_MODIFIER = f"{CANONICAL_BASE}/StructureDefinition/procedure-modifier"
EXT_CODING_SETTING = f"{CANONICAL_BASE}/StructureDefinition/coding-setting"
OPERATION_URL = f"{CANONICAL_BASE}/OperationDefinition/suggest-codes"
OVERRIDE_REASON_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/override-reason"


def system_uri(system: str) -> str:
    """The FHIR code-system URI of one of the pipeline's systems.

    Args:
        system: ``ICD10CM``, ``CPT`` or ``HCPCS``.

    Returns:
        Its URI (HL7 Terminology).

    Raises:
        KeyError: an unknown system.
    """
    return SYSTEM_URIS[system]


def modifier_system(modifier: str) -> str:
    """The code system of a modifier: two digits are CPT (Level I), anything else HCPCS Level II.

    Args:
        modifier: two characters, e.g. ``25`` or ``RT``.

    Returns:
        The CPT or HCPCS URI.
    """
    return CPT if modifier.isdigit() else HCPCS
