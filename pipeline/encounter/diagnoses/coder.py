"""Diagnosis rules of the encounter coder: from mentions to the claim's ICD-10-CM codes.

:class:`DiagnosisCoder` applies the ICD-10-CM Official Guidelines for Coding and Reporting
FY2026 (the section is cited at each rule) to the mentions of one note:

* diagnoses come from the provider's final diagnostic statements (IV.C, II, III), one code per
  stated condition: the longest mention that the statement fully states wins over the mentions
  inside it, and among its codes the most specific one the words support (I.A.9, I.B.13);
* negated and hypothetical conditions are never coded; uncertain ones are not coded in the
  outpatient setting (IV.H) and are coded as established at inpatient discharge (II.H, III.C);
* a condition of a family member becomes a family history code, a resolved one a personal
  history code (I.C.21.c.4), chronic conditions on treatment documented in the history are
  coded (IV.J);
* the external cause of an injury is looked up in the External Cause Index (I.C.20);
* hypertension combinations (I.C.9.a), signs and symptoms routine to a coded diagnosis (I.B.5),
  Excludes1 pairs (I.A.12.a), "use additional code" companions, 7th characters (I.C.19.a),
  physician queries (I.B.14, III.B, I.C.1.d.1.a.ii), sequencing (I.A.13, I.C.19.a) and the
  first-listed (IV.G) or principal (II) diagnosis.

Every decision is recorded on the code it touched as a :class:`~pipeline.types.RuleDecision`.

The stages run in the order of :meth:`DiagnosisCoder.code`, one module per concern: statements
and their assertions (:mod:`.statements`), history (:mod:`.history`), the external cause
(:mod:`.external`), classification instructions (:mod:`.instructions`), specificity and
billability (:mod:`.specificity`), Excludes notes (:mod:`.excludes`), queries (:mod:`.queries`),
the 7th character (:mod:`.seventh`) and sequencing (:mod:`.sequencing`). They share the
:class:`~pipeline.encounter.diagnoses.context.DxContext` and one
:class:`~pipeline.encounter.diagnoses.state.NoteState` per note.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from spacy.tokens import Doc

from pipeline.encounter.diagnoses.context import EXTERNAL, DxContext, stated_age
from pipeline.encounter.diagnoses.excludes import apply_excludes, query_conflicts
from pipeline.encounter.diagnoses.external import ExternalCauseIndex, code_external_cause
from pipeline.encounter.diagnoses.history import code_history
from pipeline.encounter.diagnoses.instructions import (
    add_companions,
    apply_combinations,
    apply_redirects,
    drop_integral_symptoms,
    drop_not_reported,
)
from pipeline.encounter.diagnoses.queries import add_queries
from pipeline.encounter.diagnoses.rules import DiagnosisRules, rule_codes
from pipeline.encounter.diagnoses.sequencing import sequence
from pipeline.encounter.diagnoses.seventh import assign_seventh
from pipeline.encounter.diagnoses.specificity import apply_specificity, check_billable
from pipeline.encounter.diagnoses.state import DxResult, NoteState, Rule
from pipeline.encounter.diagnoses.statements import code_statements
from pipeline.encounter.reading import Assertions, Coverage, Mention, NoteView, ReadingRules
from pipeline.errors import RuleFileError
from pipeline.kb.store import KnowledgeBase, NoteReference

logger = logging.getLogger(__name__)


class DiagnosisCoder:
    """Applies the diagnosis rules to one annotated note.

    Args:
        kb: the knowledge base.
        rules: the diagnosis rules.
        reading: the reading rules.
        coverage: the term coverage checker.

    Raises:
        RuleFileError: the rules name an ICD-10-CM code the knowledge base does not hold (the
            Excludes and billability checks need every code the rules can produce).
    """

    def __init__(self, kb: KnowledgeBase, rules: DiagnosisRules, reading: ReadingRules, coverage: Coverage) -> None:
        unknown = sorted(code for code in rule_codes(rules) if kb.get(code, "ICD10CM") is None)
        if unknown:
            logger.error("diagnosis rules %s name codes the knowledge base lacks: %s", rules.source, unknown)
            raise RuleFileError(
                f"{rules.source}: ICD-10-CM code(s) {', '.join(unknown)} not in the knowledge base "
                f"({kb.versions.get('ICD10CM', 'unknown version')}); fix the rule file or rebuild the knowledge base"
            )
        self.context = DxContext(kb, rules, reading, coverage)
        self.external = ExternalCauseIndex(kb, coverage, rules)

    def title(self, code: str) -> str:
        """The code's title ('' when unknown)."""
        return self.context.title(code)

    def notes(self, code: str, kind: str) -> tuple[NoteReference, ...]:
        """``code_first`` / ``use_additional`` / ``excludes1`` references that apply to a code.

        Notes printed under the code, its ancestors, its block and its chapter apply (I.A.12-13).
        """
        return self.context.notes(code, kind)

    def code(
        self,
        doc: Doc,
        view: NoteView,
        asserts: Assertions,
        mentions: Sequence[Mention],
        *,
        setting: str,
        probs: dict[str, float],
        age: int | None = None,
    ) -> DxResult:
        """Code the diagnoses of one note.

        Args:
            doc: the annotated note.
            view: its layout.
            asserts: its assertions.
            mentions: its mentions (:func:`~pipeline.encounter.reading.read_mentions`).
            setting: ``outpatient`` or ``inpatient``.
            probs: the ranker's probability per code (to choose between close codes).
            age: the patient's age when known.

        Returns:
            Codes, dropped codes, queries and mentions left out.
        """
        ctx = self.context
        state = NoteState(doc, view, asserts, mentions, setting, probs)
        code_statements(ctx, state)
        code_history(ctx, state)
        code_external_cause(ctx, state, self.external)
        apply_redirects(ctx, state)
        query_conflicts(ctx, state)
        add_companions(ctx, state, age if age is not None else stated_age(view.text))
        apply_combinations(ctx, state)
        apply_specificity(ctx, state)
        drop_integral_symptoms(ctx, state)
        apply_excludes(ctx, state)
        add_queries(ctx, state)
        drop_not_reported(ctx, state)
        assign_seventh(ctx, state)
        check_billable(ctx, state)
        codes = sequence(ctx, state)
        for c in state.codes:
            if c.dropped is None and c.code in EXTERNAL:
                c.rules.append(Rule("icd.external_cause", ctx.rules.external_why))
        return DxResult(codes, [c for c in state.codes if c.dropped is not None], state.queries, state.left)
