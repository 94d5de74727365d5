"""``cs_context``: assertions of every mention (negated, historical, family, hypothetical,
uncertain) by medspaCy's ConText.

medspaCy's ``ConText`` finds the triggers and their scopes (the sentence, cut by terminations and
by ``max_scope``) and marks the mentions of ``doc.spans["cs_mentions"]`` in scope. This component
owns the triggers (``resources/context_rules.json``: medspaCy's default English set, MIT, extended
for coding and loaded strictly by :mod:`pipeline.nlp.components.context_rules`) and their persistence. Categories map
to span attributes (:data:`CATEGORY_ATTRIBUTES`, the names of
``pipeline.nlp.extensions.CONTEXT_ATTRIBUTES``).

A rule's ``allowed_types`` / ``excluded_types`` name mention kinds; ConText compares them with a
mention's label, which ``cs_mentions`` sets to the kind in upper case ("DIAGNOSIS").

Section-implied assertions (everything under "Family history:" is family, under "Past medical
history:" historical) are set by ``cs_attributes`` from its rule file, after this component.

(No ``from __future__ import annotations`` here: spaCy resolves the factory's annotations.)
"""

import logging
import time
from typing import Any

from medspacy.context import ConText, ConTextRule
from spacy.language import Language
from spacy.tokens import Doc

from pipeline.nlp.components.context_rules import CONTEXT_RULES_FILE, ContextRules, load_context_rules
from pipeline.nlp.components.rules import RuleFileComponent, expand_pattern
from pipeline.nlp.extensions import MENTIONS, record_timing, register_extensions

logger = logging.getLogger(__name__)

# ConText category -> the span attribute it sets.
CATEGORY_ATTRIBUTES = {
    "NEGATED_EXISTENCE": "is_negated",
    "HISTORICAL": "is_historical",
    "FAMILY": "is_family",
    "HYPOTHETICAL": "is_hypothetical",
    "POSSIBLE_EXISTENCE": "is_uncertain",
}


@Language.factory(
    "cs_context",
    requires=["token.is_sent_start", "doc.spans"],
    assigns=[f"span._.{attr}" for attr in CATEGORY_ATTRIBUTES.values()],
    default_config={},
)
def make_context(nlp: Language, name: str) -> "ClinicalContext":
    """Create the ``cs_context`` component (see :class:`ClinicalContext`).

    Args:
        nlp: the pipeline.
        name: component name.

    Returns:
        The component.
    """
    return ClinicalContext(nlp, name)


class ClinicalContext(RuleFileComponent):
    """Runs medspaCy's ConText with the project's triggers over the mention span group.

    Args:
        nlp: the pipeline (ConText's matchers use its vocabulary and tokenizer).
        name: component name.
    """

    rules_file = CONTEXT_RULES_FILE

    def __init__(self, nlp: Language, name: str = "cs_context"):
        register_extensions()
        self.name = name
        self.rules: ContextRules | None = None
        self._nlp = nlp
        self._context: ConText | None = None

    # -- building ------------------------------------------------------------------------------
    def set_rules(self, rules: ContextRules) -> None:
        """Build ConText from validated rules (medspaCy's default rules stay off).

        Args:
            rules: the triggers.
        """
        context = ConText(
            self._nlp,
            name=f"{self.name}.medspacy",
            rules=None,
            input_span_type="group",
            span_group_name=MENTIONS,
            span_attrs={category: {attr: True} for category, attr in CATEGORY_ATTRIBUTES.items()},
        )
        medspacy_rules = []
        for spec in rules.rules:
            allowed = set(spec.allowed_types) if spec.allowed_types is not None else None
            excluded = set(spec.excluded_types) if spec.excluded_types is not None else None
            for literal, pattern in phrase_variants(self._nlp, spec.literal, spec.pattern):
                medspacy_rules.append(
                    ConTextRule(
                        literal=literal,
                        category=spec.category,
                        pattern=pattern,
                        direction=spec.direction,
                        max_scope=spec.max_scope,
                        max_targets=spec.max_targets,
                        allowed_types=allowed,
                        excluded_types=excluded,
                        terminated_by=set(spec.terminated_by) or None,
                    )
                )
        context.add(medspacy_rules)
        self.rules = rules
        self._context = context
        logger.debug("cs_context: %d triggers, %d matcher rules", len(rules.rules), len(medspacy_rules))

    # -- annotating ----------------------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        """Set the assertion attributes of the mentions in ``doc.spans["cs_mentions"]``.

        Raises:
            ValueError: the component has no rules, or the document has no sentence boundaries.
        """
        if self._context is None:
            raise ValueError("cs_context has no rules: initialize the pipeline or load it from disk")
        started = time.perf_counter()
        if MENTIONS in doc.spans and len(doc.spans[MENTIONS]):
            if not doc.has_annotation("SENT_START"):
                raise ValueError("cs_context needs sentence boundaries: put cs_sentences before it")
            self._context(doc)
        record_timing(doc, self.name, started)
        return doc

    # -- persistence (pipeline.nlp.components.rules.RuleFileComponent) -----------------------------
    def _restore(self, text: str, source: str) -> None:
        self.set_rules(load_context_rules(text, source))


def phrase_variants(
    nlp: Language, literal: str, pattern: list[dict[str, Any]] | None
) -> list[tuple[str, list[dict[str, Any]] | None]]:
    """The (literal, pattern) pairs that implement one rule in medspaCy's matcher.

    A token pattern that is a finite set of phrases (:func:`pipeline.nlp.components.rules.expand_pattern`)
    becomes one phrase literal a variant, matched by medspaCy's PhraseMatcher; the token Matcher
    would try every pattern at every token (about 15 ms a note for the full rule set). A variant
    must tokenize back into its own tokens, else the pattern is kept as it is.

    Args:
        nlp: the pipeline whose tokenizer medspaCy uses for literals.
        literal: the rule's literal.
        pattern: the rule's token pattern, or None.

    Returns:
        ``(literal, None)`` pairs for phrases, or ``[(literal, pattern)]``.
    """
    if pattern is None:
        return [(literal, None)]
    phrases = expand_pattern(pattern)
    if phrases is None:
        return [(literal, pattern)]
    variants: list[tuple[str, list[dict[str, Any]] | None]] = []
    for tokens in phrases:
        text = " ".join(tokens)
        if tuple(t.lower_ for t in nlp.tokenizer(text)) != tokens:
            return [(literal, pattern)]
        variants.append((text, None))
    return variants
