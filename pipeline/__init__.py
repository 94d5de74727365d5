"""codesuggest: clinical note -> ranked, evidence-linked ICD-10-CM, CPT and HCPCS suggestions."""

__version__ = "0.1.0"
