"""HL7 FHIR R4 in and out: notes as FHIR resources in, the code set as FHIR resources out.

* :mod:`service.fhir.terminology`: code-system URIs, the project's canonical URLs, value maps.
* :mod:`service.fhir.outcome`: :class:`FhirError` and the ``OperationOutcome`` it becomes.
* :mod:`service.fhir.reading`: a ``DocumentReference``, a ``Bundle`` (``Composition`` and its
  sections, or ``DocumentReference`` entries) or ``Parameters`` -> one :class:`ClinicalNote`.
* :mod:`service.fhir.writing`: a :class:`pipeline.types.SuggestionResult` -> ``Condition``,
  ``Procedure``, a draft ``Claim``, ``Device`` and ``Provenance`` in a ``collection`` Bundle.
* :mod:`service.fhir.conformance`: ``CapabilityStatement``, the ``$suggest-codes``
  ``OperationDefinition`` and the ``StructureDefinition`` of each extension the output uses.
* :mod:`service.fhir.models`: validation of every resource with the ``fhir.resources`` R4B
  models (the package's default is R5; R4B reads and checks R4 content).

The routes are :mod:`service.routes.fhir` and, for CDS Hooks, :mod:`service.routes.cds_hooks`.
"""
