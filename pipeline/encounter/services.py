"""Service lines of the encounter: CPT and HCPCS Level II codes, units, modifiers and pointers.

:class:`ServiceCoder` turns the procedure, supply and drug mentions of a note into claim lines:

* a mention is a service of this claim only when the note says it was done today by this
  provider (not ordered, planned, past, sent out or done by others, Guidelines IV and CPT);
* mentions of one service (the X-ray named in the history and in its reading) make one line,
  and its code is the one of its family (codes that share a phrase or a feature set) whose
  features the note states: number of views, wound length and site, method, design...;
* units (drug dose over the code's billing unit, lesion counts of add-on codes), modifiers
  (RT/LT/50, 26/TC, 25, 59, QW) and the diagnoses each line points to (claim box 24E).

The rules are data: ``resources/encounter_services.json``. Code numbers only; no CPT text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field
from spacy.tokens import Doc

from pipeline.encounter.diagnoses.state import DxCode, Rule
from pipeline.encounter.em import EmDecision
from pipeline.encounter.lines import ServiceLine
from pipeline.encounter.reading import Assertions, Coverage, Mention, NoteView
from pipeline.encounter.rule_data import CodeSet, IcdCodes, Phrases, ServiceCode, ServiceRanges, in_ranges
from pipeline.kb.sources.hcpcs import load_hcpcs_synonyms
from pipeline.kb.store import KnowledgeBase
from pipeline.rulefile import (
    NonNegativeInt,
    PhraseList,
    PositiveInt,
    RegexList,
    RuleFile,
    RuleModel,
    Text,
    load_rules,
    read_rule_text,
    schema_field,
)

SERVICES_FILE = "encounter_services.json"

SERVICE_KINDS = frozenset({"procedure", "supply", "drug"})
# Features that name what a thing is: codes of one family agree on them.
IDENTITY_FEATURES = ("modality", "body_part", "analyte", "specimen", "vaccine", "drug", "item", "length", "minutes")
_NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_DOSE_UNIT = re.compile(r"(\d+(?:\.\d+)?)\s*(mg|mcg|g|ml|units?)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ServiceRules:
    """The contents of ``encounter_services.json`` (see the file's description)."""

    not_today: Phrases
    not_today_patterns: tuple[re.Pattern[str], ...]
    past: Phrases
    sent_out: Phrases
    sent_out_patterns: tuple[re.Pattern[str], ...]
    performed: Phrases
    ambiguous_terms: frozenset[str]
    timed_codes: tuple[tuple[str, str], ...]
    timed_patterns: tuple[re.Pattern[str], ...]
    administration: Phrases
    supplied: Phrases
    emergency: Phrases
    emergency_allowed: tuple[tuple[str, str], ...]
    pt_codes: tuple[tuple[str, str], ...]
    professional: Phrases
    technical: Phrases
    office_equipment: Phrases
    pt_why: str
    laterality_codes: tuple[tuple[str, str], ...]
    bilateral_codes: tuple[tuple[str, str], ...]
    laterality_why: str
    no_25: tuple[tuple[str, str], ...]
    why_25: str
    distinct_pairs: tuple[tuple[str, str], ...]
    distinct_why: str
    waived: Phrases
    waived_codes: tuple[tuple[str, str], ...]
    waived_why: str
    replacements: tuple[tuple[str, str, str, str], ...]
    bundles: tuple[tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], str], ...]
    add_ons: tuple[tuple[str, str, tuple[re.Pattern[str], ...], int, int, str], ...]
    repair_codes: tuple[tuple[str, str], ...]
    repair_lengths: tuple[re.Pattern[str], ...]
    repair_groups: tuple[tuple[str, frozenset[str]], ...]
    repair_why: str
    negative_prefixes: tuple[str, ...]
    feature_defaults: dict[str, str]
    features_why: str
    dose_patterns: tuple[re.Pattern[str], ...]
    count_patterns: tuple[re.Pattern[str], ...]
    units_why: str
    supports: tuple[tuple[tuple[tuple[str, str], ...], CodeSet, str], ...]
    tests: tuple[tuple[Phrases, str], ...]
    pointer_exclude: CodeSet
    modifier_order: tuple[str, ...]


class _Context(RuleModel):
    not_today: PhraseList
    not_today_patterns: RegexList
    past: PhraseList
    sent_out: PhraseList
    sent_out_patterns: RegexList
    performed: PhraseList


class _Timed(RuleModel):
    codes: ServiceRanges
    patterns: RegexList


class _Administration(RuleModel):
    cues: PhraseList
    supply_cues: PhraseList


class _Place(RuleModel):
    emergency: PhraseList
    emergency_allowed: ServiceRanges


class _ProfessionalTechnical(RuleModel):
    codes: ServiceRanges
    professional: PhraseList
    technical: PhraseList
    office_equipment: PhraseList
    why: Text


class _Laterality(RuleModel):
    codes: ServiceRanges
    bilateral_codes: ServiceRanges
    why: Text


class _Modifier25(RuleModel):
    not_with: ServiceRanges
    why: Text


class _Distinct(RuleModel):
    pairs: tuple[Annotated[tuple[ServiceCode, ...], Field(min_length=2, max_length=2)], ...]
    why: Text


class _Waived(RuleModel):
    phrases: PhraseList
    codes: ServiceRanges
    why: Text


class _Replacement(RuleModel):
    code: ServiceCode
    by_category: Text
    to: ServiceCode
    why: Text


class _Bundle(RuleModel):
    codes: ServiceRanges
    with_: ServiceRanges = Field(alias="with")
    why: Text


class _AddOn(RuleModel):
    primary: ServiceCode
    add_on: ServiceCode
    count: RegexList
    minus: NonNegativeInt
    max: PositiveInt
    why: Text


class _SiteGroup(RuleModel):
    group: Text
    words: PhraseList


class _Repairs(RuleModel):
    codes: ServiceRanges
    length_patterns: RegexList
    site_groups: Annotated[tuple[_SiteGroup, ...], Field(min_length=1)]
    why: Text


class _Features(RuleModel):
    negative_prefixes: PhraseList
    defaults: dict[str, str]
    why: Text


class _Units(RuleModel):
    dose_patterns: RegexList
    count_patterns: RegexList
    why: Text


class _Support(RuleModel):
    codes: ServiceRanges
    diagnoses: IcdCodes
    why: Text


class _Test(RuleModel):
    phrases: PhraseList
    code: ServiceCode


class ServicesFile(RuleFile):
    """``encounter_services.json`` (schema ``codesuggest.encounter-services/1``)."""

    schema_id: Literal["codesuggest.encounter-services/1"] = schema_field()
    context: _Context
    ambiguous_terms: PhraseList
    timed_codes: _Timed
    drug_administration: _Administration
    place: _Place
    professional_technical: _ProfessionalTechnical
    laterality: _Laterality
    modifier_25: _Modifier25
    distinct: _Distinct
    waived: _Waived
    replacements: tuple[_Replacement, ...]
    bundles: tuple[_Bundle, ...]
    add_ons: tuple[_AddOn, ...]
    repairs: _Repairs
    features: _Features
    units: _Units
    supports: tuple[_Support, ...]
    tests: tuple[_Test, ...]
    pointer_exclude: IcdCodes
    modifier_order: tuple[Annotated[str, Field(min_length=2, max_length=2)], ...]


def load_service_rules(path: Path | None = None) -> ServiceRules:
    """Load and check ``encounter_services.json`` (or ``path``).

    Args:
        path: another file to read instead of the packaged one.

    Returns:
        The rules.

    Raises:
        RuleFileError: the file is invalid; the message names file, line and entry.
    """
    text, source = read_rule_text(SERVICES_FILE, path)
    f = load_rules(ServicesFile, text, source)
    ctx, adm, pt, lat, rep = f.context, f.drug_administration, f.professional_technical, f.laterality, f.repairs
    return ServiceRules(
        not_today=Phrases(ctx.not_today),
        not_today_patterns=ctx.not_today_patterns,
        past=Phrases(ctx.past),
        sent_out=Phrases(ctx.sent_out),
        sent_out_patterns=ctx.sent_out_patterns,
        performed=Phrases(ctx.performed),
        ambiguous_terms=frozenset(f.ambiguous_terms),
        timed_codes=f.timed_codes.codes,
        timed_patterns=f.timed_codes.patterns,
        administration=Phrases(adm.cues),
        supplied=Phrases(adm.supply_cues),
        emergency=Phrases(f.place.emergency),
        emergency_allowed=f.place.emergency_allowed,
        pt_codes=pt.codes,
        professional=Phrases(pt.professional),
        technical=Phrases(pt.technical),
        office_equipment=Phrases(pt.office_equipment),
        pt_why=pt.why,
        laterality_codes=lat.codes,
        bilateral_codes=lat.bilateral_codes,
        laterality_why=lat.why,
        no_25=f.modifier_25.not_with,
        why_25=f.modifier_25.why,
        distinct_pairs=tuple((a, b) for a, b in f.distinct.pairs),
        distinct_why=f.distinct.why,
        waived=Phrases(f.waived.phrases),
        waived_codes=f.waived.codes,
        waived_why=f.waived.why,
        replacements=tuple((r.code, r.by_category, r.to, r.why) for r in f.replacements),
        bundles=tuple((b.codes, b.with_, b.why) for b in f.bundles),
        add_ons=tuple((a.primary, a.add_on, a.count, a.minus, a.max, a.why) for a in f.add_ons),
        repair_codes=rep.codes,
        repair_lengths=rep.length_patterns,
        repair_groups=tuple((g.group, frozenset(g.words)) for g in rep.site_groups),
        repair_why=rep.why,
        negative_prefixes=f.features.negative_prefixes,
        feature_defaults=dict(f.features.defaults),
        features_why=f.features.why,
        dose_patterns=f.units.dose_patterns,
        count_patterns=f.units.count_patterns,
        units_why=f.units.why,
        supports=tuple((s.codes, s.diagnoses, s.why) for s in f.supports),
        tests=tuple((Phrases(t.phrases), t.code) for t in f.tests),
        pointer_exclude=f.pointer_exclude,
        modifier_order=f.modifier_order,
    )


@dataclass
class _Instance:
    mentions: list[int]
    codes: set[str]
    system: str
    group: str
    side: str | None
    sites: set[str]
    region: int | None
    tokens: set[int]
    text: str
    start: int
    views: int | None


class ServiceCoder:
    """Turns procedure, supply and drug mentions into claim lines.

    Args:
        kb: the knowledge base (CPT starter features, HCPCS titles).
        rules: the service rules.
        coverage: the term coverage checker.
    """

    def __init__(self, kb: KnowledgeBase, rules: ServiceRules, coverage: Coverage) -> None:
        self.kb = kb
        self.rules = rules
        self.coverage = coverage
        self.features: dict[str, dict[str, str]] = {}
        self.category: dict[str, str] = {}
        phrases: dict[str, set[str]] = {}
        for system in ("CPT", "HCPCS"):
            for rec in kb.iter_codes(system):  # type: ignore[arg-type]
                if not rec.billable:
                    continue
                feats = {k[len("feature.") :]: v for k, v in rec.meta.items() if k.startswith("feature.")}
                self.features[rec.code] = feats
                self.category[rec.code] = rec.meta.get("category") or rec.meta.get("synonym_category") or ""
                for p in rec.synonyms:
                    phrases.setdefault(p, set()).add(rec.code)
        for syn in load_hcpcs_synonyms():
            self.features[syn.code] = dict(syn.features)
            self.category[syn.code] = syn.category
        # Words that say nothing about where a service was done (sides, actions, generic nouns).
        plain = (
            "right left bilateral both side unspecified other injection joint approach sterile technique "
            "prep given applied performed repair simple single layer closure total with without initial "
            "encounter acute chronic primary procedure views view taken office interpreted read today "
            "fracture disorder disease pain"
        )
        self._plain_keys = frozenset(k for w in plain.split() for k in coverage.words(w))
        self._family: dict[str, set[str]] = {}
        by_shape: dict[tuple[Any, ...], set[str]] = {}
        for code, feats in self.features.items():
            if not feats:
                continue
            shape = (self.category.get(code), tuple(sorted(feats)), tuple(feats.get(k) for k in IDENTITY_FEATURES))
            by_shape.setdefault(shape, set()).add(code)
        for codes in phrases.values():
            for c in codes:
                self._family.setdefault(c, set()).update(codes)
        for codes in by_shape.values():
            for c in codes:
                self._family.setdefault(c, set()).update(codes)

    def family(self, code: str) -> set[str]:
        """Codes that compete with ``code`` for the same service (itself included)."""
        return self._family.get(code, {code}) | {code}

    # -- main -----------------------------------------------------------------------------------
    def code(
        self, doc: Doc, view: NoteView, asserts: Assertions, mentions: Sequence[Mention], dx: Sequence[DxCode]
    ) -> list[ServiceLine]:
        """The service lines of one outpatient note (without the E/M line).

        Args:
            doc: the annotated note.
            view: its layout.
            asserts: its assertions.
            mentions: its mentions.
            dx: the diagnosis codes of the claim, in claim order.

        Returns:
            Lines in the order the note describes them.
        """
        text = view.text
        lower = text.lower()
        emergency = self.rules.emergency.search(text[: max(200, text.find("\n") + 1)]) is not None
        instances: list[_Instance] = []
        found: list[_Instance] = []
        self._sent: set[str] = set()
        for i, span in enumerate(mentions):
            if span.kind in SERVICE_KINDS:
                found.extend(self._instances(i, span, view, asserts, lower))
        found = [f for f in found if not (f.codes & self._sent)]
        for inst in found:
            same = next((o for o in instances if self._same(o, inst)), None)
            if same is None:
                instances.append(inst)
            else:
                same.mentions.append(i)
                same.codes |= inst.codes
                same.tokens |= inst.tokens
                same.sites |= inst.sites
                same.side = same.side or inst.side
                same.views = same.views or inst.views
                if inst.text not in same.text:
                    same.text += " " + inst.text
        lines: list[ServiceLine] = []
        for inst in instances:
            line = self._line(inst, lower)
            if line is not None:
                lines.append(line)
        lines = self._merge(lines)
        self._replace(lines)
        self._bundle(lines)
        self._add_ons(lines, lower)
        self._repairs(lines, view, dx)
        self._professional_technical(lines, emergency)
        if emergency:
            lines = [ln for ln in lines if in_ranges(ln.code, self.rules.emergency_allowed)]
        for line in lines:
            self._pointers(line, dx, view)
            if line.side is None:
                line.side = self._pointed_side(line, dx)
            self._laterality(line)
            self._waived(line)
            self._units(line)
        self._drug_pointers(lines)
        self._distinct(lines)
        lines.sort(key=lambda ln: ln.start)
        return lines

    def finish(self, lines: list[ServiceLine], dx: Sequence[DxCode], em: EmDecision | None) -> None:
        """Modifier 25 and the E/M pointers, once every line is known; modifiers in claim order.

        Args:
            lines: all service lines, the E/M line first when there is one.
            dx: the diagnosis codes.
            em: the E/M decision.
        """
        em_line = next((ln for ln in lines if ln.role == "em"), None)
        if em_line is not None:
            others = [ln for ln in lines if ln is not em_line and not in_ranges(ln.code, self.rules.no_25)]
            if others:
                em_line.modifiers.append("25")
                em_line.rules.append(
                    Rule(
                        "mod.25",
                        f"separately identifiable E/M on the day of "
                        f"{', '.join(sorted({o.code for o in others}))}: {self.rules.why_25}",
                    )
                )
            em_line.pointers = self._em_pointers(lines, dx, em)
            em_line.rules.append(Rule("proc.pointers", f"points to {', '.join(em_line.pointers)}"))
        order = {m: i for i, m in enumerate(self.rules.modifier_order)}
        for line in lines:
            line.modifiers = sorted(dict.fromkeys(line.modifiers), key=lambda m: order.get(m, len(order)))

    # -- instances --------------------------------------------------------------------------------
    def _instances(self, i: int, span: Any, view: NoteView, asserts: Assertions, lower: str) -> list[_Instance]:
        """The services a mention names (one per code system), when done today."""
        a = asserts.of(span)
        if a["negated"] or a["hypothetical"] or a["family"]:
            return []
        lo, hi = view.clause_bounds(span.start_char, span.end_char)
        s_lo, s_hi = _sentence(view.text, span.start_char, span.end_char)
        clause = view.text[lo:hi]
        words = self.coverage.words(clause)
        raw = self.coverage.raw_words(clause)
        codes: set[str] = set()
        for m in span.matches or ():
            if m.system not in ("CPT", "HCPCS") or m.source == "fuzzy":
                continue
            if m.text.lower() in self.rules.ambiguous_terms:
                continue
            if not self.coverage.covered(m.text, m.source, words, raw):
                continue
            if not phrase_stated(m.text, raw, self.coverage):
                continue
            codes.add(m.code)
        if not codes:
            return []
        sentence = lower[s_lo:s_hi]
        before = lower[s_lo : span.start_char]
        if self.rules.not_today.search(sentence) and not self.rules.performed.search(sentence):
            return []
        if any(p.search(sentence) for p in self.rules.not_today_patterns) and not self.rules.performed.search(before):
            return []
        if self.rules.past.search(sentence) and not self.rules.performed.search(sentence):
            return []
        region = view.region_at(span.start_char)
        out = []
        for system in ("CPT", "HCPCS"):
            mine = {c for c in codes if (c[0].isdigit()) == (system == "CPT")}
            if not mine:
                continue
            if (
                self.rules.sent_out.search(sentence) or any(p.search(sentence) for p in self.rules.sent_out_patterns)
            ) and not any(_is_venipuncture(c) for c in mine):
                self._sent |= {f for c in mine for f in self.family(c)}
                continue
            group = "drug" if span.kind == "drug" else self.category.get(next(iter(sorted(mine))), "")
            if system == "HCPCS" and group == "drug" and not self.rules.administration.search(sentence):
                continue
            if system == "HCPCS" and group != "drug" and not self.rules.supplied.search(sentence):
                continue
            if group == "lab" and not self.rules.performed.search(sentence):
                continue  # a result quoted without saying it was done here
            tokens = {t for m in span.matches or () if m.code in mine for t in m.tokens}
            side = span.laterality if span.laterality in ("right", "left", "bilateral") else None
            if side is None:
                side = _sentence_side(sentence)
            out.append(
                _Instance(
                    [i],
                    mine,
                    system,
                    group,
                    side,
                    set(span.site or ()),
                    region.order if region is not None and region.heading.lower().startswith("procedure") else None,
                    tokens,
                    sentence,
                    span.start_char,
                    span.views,
                )
            )
        return out

    def _same(self, a: _Instance, b: _Instance) -> bool:
        """Two mentions of one service: same system, and overlapping words, or one family in one
        sentence, or one family without a different side, site or procedure paragraph."""
        if a.system != b.system or (a.group == "drug") != (b.group == "drug"):
            return False
        if a.region != b.region and a.region is not None and b.region is not None:
            return False
        if a.side and b.side and a.side != b.side:
            return False
        if a.tokens & b.tokens and (a.group == b.group or a.system == "HCPCS"):
            return True  # one phrase describing one item ("stirrup-style ankle brace")
        fam = set().union(*(self.family(c) for c in a.codes))
        if not fam & b.codes:
            return False
        if a.tokens & b.tokens or a.text == b.text:
            return True
        return not (a.sites and b.sites and not (a.sites & b.sites))

    # -- code choice ----------------------------------------------------------------------------
    def _line(self, inst: _Instance, lower: str) -> ServiceLine | None:
        pool = {
            c for c in set().union(*(self.family(c) for c in inst.codes)) if c[0].isdigit() == (inst.system == "CPT")
        }
        best, best_score = None, None
        for code in sorted(pool):
            rec = self.kb.get(code)
            if rec is None or not rec.billable:
                continue
            if in_ranges(code, self.rules.timed_codes) and not any(
                p.search(inst.text) for p in self.rules.timed_patterns
            ):
                continue
            score = self._score(code, inst)
            key = (score, code in inst.codes, -len(self.features.get(code, {})), -int(code.isdigit()))
            if best_score is None or key > best_score:
                best, best_score = code, key
        if best is None:
            return None
        rec = self.kb.get(best)
        assert rec is not None
        category = self.category.get(best, "")
        role = "supply" if rec.system == "HCPCS" or category == "vaccine" else "procedure"
        rules = []
        if len(pool) > 1:
            chosen = [f"{k} {v}" for k, v in self.features.get(best, {}).items()]
            rules.append(
                Rule(
                    _rule_id(category),
                    f"{best} of {', '.join(sorted(pool))}: the note states "
                    f"{'; '.join(chosen) or 'it'} ({self.rules.features_why})",
                )
            )
        else:
            rules.append(Rule(_rule_id(category), f"{best}: documented as done today"))
        return ServiceLine(
            best,
            rec.system,
            rec.title,
            role,
            category,
            mentions=list(inst.mentions),
            rules=rules,
            rationale=f"documented as done today: {rec.title}",
            side=inst.side,
            sites=inst.sites,
            text=inst.text,
            start=inst.start,
        )

    def _score(self, code: str, inst: _Instance) -> float:
        feats = self.features.get(code, {})
        text = inst.text
        score = 0.0
        for key, value in feats.items():
            if key == "views":
                score += views_score(value, inst.views)
                continue
            if key in ("size_cm", "site_group"):
                continue  # repairs are chosen from the summed length (see _repairs)
            if key == "component":
                continue  # chosen with 26/TC
            score += self._value_score(key, value, text)
        return score

    def _value_score(self, key: str, value: str, text: str) -> float:
        value = value.lower()
        for prefix in self.rules.negative_prefixes:
            if value.startswith(prefix):
                positive = value[len(prefix) :].strip()
                return -1.0 if _has(text, positive) else 0.25
        words = [w for w in re.split(r"[\s/]+", value) if w and w not in ("and", "or", "with", "of", "the")]
        hits = sum(1 for w in words if _has(text, w))
        if hits:
            return hits / max(len(words), 1) + 0.1 * hits
        default = self.rules.feature_defaults.get(key)
        return 0.1 if default == value else 0.0

    # -- line rules -----------------------------------------------------------------------------
    def _merge(self, lines: list[ServiceLine]) -> list[ServiceLine]:
        """Drug lines of one code are one line (their units add up)."""
        out: list[ServiceLine] = []
        for line in lines:
            twin = next((o for o in out if o.code == line.code and o.category == "drug" == line.category), None)
            if twin is not None:
                twin.mentions.extend(line.mentions)
                twin.text += " || " + line.text
                continue
            out.append(line)
        return out

    def _replace(self, lines: list[ServiceLine]) -> None:
        for code, category, to, why in self.rules.replacements:
            if any(ln.category == category for ln in lines):
                for ln in lines:
                    if ln.code == code:
                        rec = self.kb.get(to)
                        if rec is None:
                            continue
                        if any(o.code == to for o in lines):
                            ln.code = ""  # the administration line is already there
                        else:
                            ln.rules.append(Rule("proc.injection", f"{code} -> {to}: {why}"))
                            ln.code, ln.title = to, rec.title
        lines[:] = [ln for ln in lines if ln.code]

    def _bundle(self, lines: list[ServiceLine]) -> None:
        keep = []
        for ln in lines:
            bundled = next(
                (
                    why
                    for codes, with_, why in self.rules.bundles
                    if in_ranges(ln.code, codes) and any(in_ranges(o.code, with_) for o in lines if o is not ln)
                ),
                None,
            )
            if bundled is None:
                keep.append(ln)
        lines[:] = keep

    def _add_ons(self, lines: list[ServiceLine], lower: str) -> None:
        for primary, add_on, patterns, minus, cap, why in self.rules.add_ons:
            base = next((ln for ln in lines if ln.code == primary), None)
            if base is None or any(ln.code == add_on for ln in lines):
                continue
            count = None
            for p in patterns:
                m = p.search(base.text) or p.search(lower)
                if m:
                    word = m.group(1).lower()
                    count = int(word) if word.isdigit() else _NUMBERS.get(word)
                    break
            if count is None or count - minus < 1:
                continue
            rec = self.kb.get(add_on)
            if rec is None:
                continue
            extra = ServiceLine(
                add_on,
                rec.system,
                rec.title,
                "procedure",
                base.category,
                units=min(count - minus, cap),
                mentions=list(base.mentions),
                rules=[Rule("proc.minor", f"{count} in all: {add_on} x {min(count - minus, cap)} ({why})")],
                rationale=why,
                text=base.text,
                start=base.start + 1,
            )
            lines.append(extra)

    def _repairs(self, lines: list[ServiceLine], view: NoteView, dx: Sequence[DxCode]) -> None:
        """Simple repairs: one line per anatomic group, by the summed length."""
        for line in lines:
            if not in_ranges(line.code, self.rules.repair_codes):
                continue
            length = None
            for p in self.rules.repair_lengths:
                m = p.search(line.text)
                if m:
                    length = float(m.group(1))
                    break
            words = set(re.findall(r"[a-z]+", line.text))
            for c in dx:
                if c.statement is not None and c.code[0] in "ST":
                    words |= set(re.findall(r"[a-z]+", view.text[c.statement.start : c.statement.end].lower()))
            group = next((g for g, ws in self.rules.repair_groups if words & ws), None)
            if length is None or group is None:
                continue
            for code in sorted(self.family(line.code)):
                f = self.features.get(code, {})
                if (
                    f.get("site_group") == group
                    and f.get("complexity") == "simple"
                    and in_band(length, f.get("size_cm", ""))
                ):
                    rec = self.kb.get(code)
                    if rec is None:
                        continue
                    line.rules.append(
                        Rule(
                            "proc.minor",
                            f"simple repair, {length:g} cm in all, {group.split('-')[0]} "
                            f"group: {code} ({self.rules.repair_why})",
                        )
                    )
                    line.code, line.title = code, rec.title
                    break

    def _professional_technical(self, lines: list[ServiceLine], emergency: bool) -> None:
        keep = []
        for line in lines:
            if line.category == "cardiology" and line.code in self.family(line.code):
                comp = (
                    "professional"
                    if emergency
                    or ("interpret" in line.text and "perform" not in line.text and "tracing" not in line.text)
                    else "global"
                )
                for code in sorted(self.family(line.code)):
                    if (
                        self.features.get(code, {}).get("component") == comp
                        and self.features.get(code, {}).keys() == self.features.get(line.code, {}).keys()
                    ):
                        if code != line.code:
                            rec = self.kb.get(code)
                            if rec is not None:
                                line.rules.append(Rule("mod.26_tc", f"{comp} component: {code}"))
                                line.code, line.title = code, rec.title
                        break
            if in_ranges(line.code, self.rules.pt_codes):
                if self.rules.professional.search(line.text):
                    line.modifiers.append("26")
                    line.rules.append(Rule("mod.26_tc", f"26: interpretation only ({self.rules.pt_why})"))
                elif self.rules.technical.search(line.text):
                    if emergency or not self.rules.office_equipment.search(line.text):
                        continue  # read and billed by others; not on this claim
                    line.modifiers.append("TC")
                    line.rules.append(Rule("mod.26_tc", f"TC: technical component only ({self.rules.pt_why})"))
            keep.append(line)
        lines[:] = keep

    def _laterality(self, line: ServiceLine) -> None:
        if not in_ranges(line.code, self.rules.laterality_codes) or line.side is None:
            return
        if line.side == "bilateral":
            if in_ranges(line.code, self.rules.bilateral_codes):
                line.modifiers.append("50")
                line.rules.append(Rule("mod.laterality", f"50: both sides, one line ({self.rules.laterality_why})"))
            return
        mod = "RT" if line.side == "right" else "LT"
        line.modifiers.append(mod)
        line.rules.append(Rule("mod.laterality", f"{mod}: {line.side} side ({self.rules.laterality_why})"))

    def _waived(self, line: ServiceLine) -> None:
        if in_ranges(line.code, self.rules.waived_codes) and self.rules.waived.search(line.text):
            line.modifiers.append("QW")
            line.rules.append(Rule("proc.lab", f"QW: {self.rules.waived_why}"))

    def _units(self, line: ServiceLine) -> None:
        if line.category != "drug":
            return
        per = self.features.get(line.code, {}).get("dose", "")
        per_match = _DOSE_UNIT.search(per)
        total = 0.0
        for part in line.text.split(" || "):
            m = None
            for p in self.rules.dose_patterns:
                m = p.search(part)
                if m:
                    break
            if m is None or per_match is None or "/" in per:
                count = None
                for p in self.rules.count_patterns:
                    c = p.search(part)
                    if c:
                        word = c.group(1).lower()
                        count = int(word) if word.isdigit() else _NUMBERS.get(word, 1)
                        break
                total += count or 1
                continue
            dose = _to_mg(float(m.group(1)), m.group(2))
            unit = _to_mg(float(per_match.group(1)), per_match.group(2))
            total += dose / unit if unit else 1
        line.units = max(1, math.ceil(total - 1e-9))
        line.rules.append(
            Rule("proc.injection", f"{line.units} unit(s) of {per or 'one dose'} ({self.rules.units_why})")
        )

    def _distinct(self, lines: list[ServiceLine]) -> None:
        seen: dict[tuple[str, tuple[str, ...]], ServiceLine] = {}
        for line in sorted(lines, key=lambda ln: ln.start):
            key = (line.code, tuple(m for m in line.modifiers if m in ("RT", "LT", "50")))
            if key in seen:
                line.modifiers.append("59")
                line.rules.append(
                    Rule(
                        "mod.59",
                        f"a second {line.code} that side modifiers cannot tell apart ({self.rules.distinct_why})",
                    )
                )
            seen[key] = line
        codes = {ln.code for ln in lines}
        for first, second in self.rules.distinct_pairs:
            if first in codes:
                for line in lines:
                    if line.code == second and "59" not in line.modifiers:
                        line.modifiers.append("59")
                        line.rules.append(
                            Rule("mod.59", f"{second} with {first} on a separate lesion ({self.rules.distinct_why})")
                        )

    # -- pointers ------------------------------------------------------------------------------
    def _pointable(self, dx: Sequence[DxCode]) -> list[DxCode]:
        return [c for c in dx if c.code not in self.rules.pointer_exclude]

    def _pointers(self, line: ServiceLine, dx: Sequence[DxCode], view: NoteView) -> None:
        """The diagnoses a line is billed for (claim box 24E, at most four).

        Tests point to the conditions they evaluate (``supports``; venipuncture to those of the
        tests drawn); other services to the conditions whose statement names the same body site
        and side; a sequela injury gives way to its residual condition (I.C.19.a); failing
        that, the first-listed diagnosis.
        """
        pool = [c for c in self._pointable(dx) if not self._sequela_with_residual(c, dx)]
        if not pool:
            return
        chosen: list[str] = []
        for ranges, diagnoses, _ in self.rules.supports:
            if in_ranges(line.code, ranges):
                chosen = [c.code for c in pool if c.code in diagnoses]
                break
        if not chosen and _is_venipuncture(line.code):
            for phrases, test in self.rules.tests:
                if phrases.search(line.text):
                    for ranges, diagnoses, _ in self.rules.supports:
                        if in_ranges(test, ranges):
                            chosen += [c.code for c in pool if c.code in diagnoses and c.code not in chosen]
        if not chosen and line.category != "drug":
            line_words = self._site_keys(line.text)
            scored = []
            for c in pool:
                title = self.kb.get(c.code, "ICD10CM")
                text = (
                    (title.title if title is not None else "")
                    + " "
                    + (view.text[c.statement.start : c.statement.end] if c.statement is not None else "")
                )
                side = _sentence_side(text.lower())
                if line.side and side and line.side != side:
                    continue
                overlap = len(line_words & self._site_keys(text))
                if overlap:
                    scored.append((overlap, c.code))
            if scored:
                best = max(o for o, _ in scored)
                chosen = [code for o, code in scored if o == best]
        if not chosen:
            chosen = [pool[0].code]
        line.pointers = chosen[:4]
        line.rules.append(Rule("proc.pointers", f"points to {', '.join(line.pointers)}"))

    def _site_keys(self, text: str) -> set[str]:
        return set(self.coverage.words(text)) - self._plain_keys

    def _sequela_with_residual(self, c: DxCode, dx: Sequence[DxCode]) -> bool:
        return (
            c.code.endswith("S")
            and c.code[0] in "ST"
            and any(
                o is not c and o.statement is not None and o.statement is c.statement and o.code[0] not in "STVWXY"
                for o in dx
            )
        )

    def _drug_pointers(self, lines: list[ServiceLine]) -> None:
        """A drug is billed for the conditions of the services that gave it."""
        givers = [ln for ln in lines if ln.category in ("injection", "procedure", "pulmonary") and ln.pointers]
        for line in lines:
            if line.category != "drug" or not givers:
                continue
            pointers: list[str] = []
            for g in givers:
                pointers += [p for p in g.pointers if p not in pointers]
            line.pointers = pointers[:4]
            line.rules = [r for r in line.rules if r.id != "proc.pointers"]
            line.rules.append(
                Rule("proc.pointers", f"points to {', '.join(line.pointers)} (the services that gave the drug)")
            )

    def _pointed_side(self, line: ServiceLine, dx: Sequence[DxCode]) -> str | None:
        """The side of the condition a line treats, when the note does not restate it."""
        sides = set()
        for code in line.pointers:
            rec = self.kb.get(code, "ICD10CM")
            title = rec.title.lower() if rec is not None else ""
            sides.add(
                "bilateral"
                if "bilateral" in title
                else "right"
                if re.search(r"\bright\b", title)
                else "left"
                if re.search(r"\bleft\b", title)
                else None
            )
        return sides.pop() if len(sides) == 1 else None

    def _em_pointers(self, lines: list[ServiceLine], dx: Sequence[DxCode], em: EmDecision | None) -> list[str]:
        # A symptom reported because another code asks for it describes that condition.
        pool = [c for c in self._pointable(dx) if not (c.code[0] == "R" and c.companion_of is not None)]
        minor = [ln for ln in lines if ln.role == "procedure" and ln.code[:1] == "1"]
        if minor and em is not None and em.separate_statements:
            separate = [c for c in pool if c.statement is not None and c.statement.item in em.separate_statements]
            if separate:
                pool = separate
        return [c.code for c in pool][:4]


INJURY_EXTERNAL = CodeSet.parse(["V00-Y99"], "external causes")


def _rule_id(category: str) -> str:
    return {
        "radiology": "proc.imaging_views",
        "lab": "proc.lab",
        "injection": "proc.injection",
        "vaccine": "proc.injection",
        "drug": "proc.injection",
        "orthosis": "supply.orthosis",
        "mobility": "supply.dme",
        "casting": "proc.minor",
    }.get(category, "proc.minor")


def views_score(value: str, views: int | None) -> float:
    """How well a rule's ``views`` value (``"2"``, ``"3+"``, ``"2-3"``) fits the documented number
    of imaging views: +2 when it fits, -2 when it does not, 0 when the note gives no number."""
    if views is None:
        return 0.0
    v = value.strip()
    if v.endswith("+"):
        return 2.0 if views >= int(v[:-1]) else -2.0
    if "-" in v:
        lo, hi = (int(x) for x in v.split("-"))
        return 2.0 if lo <= views <= hi else -2.0
    return 2.0 if v.isdigit() and views == int(v) else -2.0


def in_band(length: float, band: str) -> bool:
    """Whether a length in cm falls in a rule's ``size_cm`` band (``"<=2.5"``, ``">12"``, ``"2.6-7.5"``)."""
    band = band.strip()
    if band.startswith("<="):
        return length <= float(band[2:])
    if band.startswith(">"):
        return length > float(band[1:])
    if "-" in band:
        lo, hi = (float(x) for x in band.split("-"))
        return lo <= length <= hi
    return False


def _has(text: str, phrase: str) -> bool:
    phrase = phrase.strip().lower()
    if not phrase:
        return False
    body = re.escape(phrase).replace(r"\-", r"[\s-]?").replace(r"\ ", r"[\s-]+")
    return re.search(rf"(?<![a-z]){body}(?:s|es)?(?![a-z])", text) is not None


def _to_mg(value: float, unit: str) -> float:
    unit = unit.lower()
    if unit in ("g", "gram", "grams"):
        return value * 1000
    if unit == "mcg":
        return value / 1000
    return value


_LINK_WORDS = frozenset({"of", "the", "a", "an", "and", "or", "with", "to", "for", "in", "on", "by", "at", "e.g"})


def phrase_stated(phrase: str, raw: tuple[str, ...], coverage: Coverage) -> bool:
    """Every word of a service phrase is in the clause (stop words of the matcher included:
    "patient lift" is not "lifting")."""
    keys = {coverage.normalizer.key(w) or w for w in raw}
    for w in re.findall(r"[a-z0-9]+", phrase.lower()):
        if w in _LINK_WORDS or w in raw:
            continue
        if (coverage.normalizer.key(w) or w) not in keys:
            return False
    return True


def _sentence_side(sentence: str) -> str | None:
    words = set(re.findall(r"[a-z]+", sentence))
    if words & {"bilateral", "both", "bilaterally"}:
        return "bilateral"
    if "right" in words and "left" not in words:
        return "right"
    if "left" in words and "right" not in words:
        return "left"
    return None


def _is_venipuncture(code: str) -> bool:
    return code in ("36415", "36416")


def _site_words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text)) & {
        "knee",
        "shoulder",
        "ankle",
        "wrist",
        "hip",
        "elbow",
        "hand",
        "foot",
        "forearm",
        "leg",
        "arm",
        "finger",
        "toe",
        "neck",
        "back",
        "chest",
        "axilla",
        "scalp",
        "forehead",
        "face",
        "ear",
        "eye",
    }


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    lo = start
    while lo > 0 and not (text[lo - 1] == "\n" or (text[lo - 1] in ".!?" and lo < len(text) and text[lo].isspace())):
        lo -= 1
    m = re.compile(r"[.!?](?=\s|$)|\n").search(text, end)
    return lo, m.start() if m else len(text)
