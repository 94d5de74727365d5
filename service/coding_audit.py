"""Audit mode: a blind second review of a sample of submitted encounters, and the agreement.

An admin draws a random sample of submitted encounters (not coded by the auditor, text still
kept, not audited before) and gives it to an auditor. The auditor codes each one in the same
review screen, from the same suggestions, without seeing the first coder's decisions, name or
events. Agreement is then reported per code (how often both, or only one, of the two reviews
reported it) and per encounter (identical code sets), with every disagreement listed.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.errors import InputError
from service.models import AuditReview, Encounter, ReviewCode, utcnow
from service.review import Actor, final_codes

MAX_SAMPLE = 500


def create_sample(
    session: Session,
    actor: Actor,
    auditor: str,
    size: int,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    seed: int | None = None,
) -> tuple[str, int]:
    """Draw a random sample of submitted encounters for a blind second review.

    Args:
        session: an open session.
        actor: the admin drawing it.
        auditor: who reviews the sample (a coder or admin name).
        size: how many encounters (fewer when fewer qualify).
        date_from: earliest submission date.
        date_to: latest submission date.
        seed: seed of the random draw (tests; otherwise a fresh one).

    Returns:
        The sample's id and how many encounters it holds.

    Raises:
        InputError: a size out of range, no auditor, or no encounter qualifies.
    """
    auditor = auditor.strip()
    if not auditor:
        raise InputError("choose who audits the sample")
    if not 1 <= size <= MAX_SAMPLE:
        raise InputError(f"a sample holds 1 to {MAX_SAMPLE} encounters")
    audited = select(AuditReview.encounter_pk)
    query = select(Encounter.id).where(
        Encounter.status == "submitted",
        Encounter.text_sealed.is_not(None),
        Encounter.submitted_by != auditor,
        Encounter.id.not_in(audited),
    )
    if date_from:
        query = query.where(Encounter.submitted_at >= dt.datetime.combine(date_from, dt.time(), dt.UTC))
    if date_to:
        query = query.where(
            Encounter.submitted_at < dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), dt.UTC)
        )
    eligible = sorted(session.scalars(query))
    if not eligible:
        raise InputError(
            f"no submitted encounter qualifies for an audit by {auditor} (coded by someone else, not audited yet)"
        )
    chosen = random.Random(seed if seed is not None else secrets.randbits(64)).sample(
        eligible, min(size, len(eligible))
    )
    sample = f"A{utcnow():%Y%m%d}-{secrets.token_hex(3)}"
    now = utcnow()
    for encounter_pk in sorted(chosen):
        session.add(
            AuditReview(
                sample=sample,
                encounter_pk=encounter_pk,
                auditor=auditor,
                status="open",
                created_at=now,
                created_by=actor.user,
            )
        )
    return sample, len(chosen)


def audit_for(session: Session, audit_id: int) -> tuple[AuditReview, Encounter]:
    """An audit review and its encounter.

    Raises:
        InputError: no such audit review.
    """
    audit = session.get(AuditReview, audit_id)
    if audit is None:
        raise InputError(f"no audit review {audit_id}")
    encounter = session.get(Encounter, audit.encounter_pk)
    assert encounter is not None  # the foreign key cascades
    return audit, encounter


@dataclass(slots=True)
class CodeAgreement:
    """How the two reviews agreed on one code."""

    system: str
    code: str
    coder: int = 0
    auditor: int = 0
    both: int = 0

    @property
    def agreement(self) -> float:
        """Both reviews reported it, as a share of the times either did (Dice)."""
        total = self.coder + self.auditor
        return 2 * self.both / total if total else 1.0


@dataclass(slots=True)
class Disagreement:
    """An audited encounter whose two code sets differ."""

    encounter_id: str
    only_coder: list[str]
    only_auditor: list[str]
    first_listed_agrees: bool


@dataclass(slots=True)
class AgreementReport:
    """Agreement of a set of audited encounters."""

    encounters: int = 0
    identical: int = 0
    first_listed_agree: int = 0
    codes_coder: int = 0
    codes_auditor: int = 0
    codes_both: int = 0
    per_code: list[CodeAgreement] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)

    @property
    def encounter_agreement(self) -> float:
        """Share of encounters with identical code sets."""
        return self.identical / self.encounters if self.encounters else 0.0

    @property
    def code_agreement(self) -> float:
        """Codes both reported, as a share of codes either reported (Dice over all codes)."""
        total = self.codes_coder + self.codes_auditor
        return 2 * self.codes_both / total if total else 0.0


def agreement(session: Session, sample: str | None = None) -> AgreementReport:
    """Compare each submitted audit review with the coder's submitted code set.

    Args:
        session: an open session.
        sample: one sample, or None for every audit.

    Returns:
        The report; per-code rows sorted by most disagreement first.
    """
    query = select(AuditReview).where(AuditReview.status == "submitted")
    if sample:
        query = query.where(AuditReview.sample == sample)
    report = AgreementReport()
    per_code: dict[tuple[str, str], CodeAgreement] = {}
    for audit in session.scalars(query.order_by(AuditReview.id)):
        encounter = session.get(Encounter, audit.encounter_pk)
        if encounter is None or encounter.status != "submitted":
            continue
        rows = session.scalars(
            select(ReviewCode)
            .where(ReviewCode.encounter_pk == encounter.id)
            .order_by(ReviewCode.position, ReviewCode.id)
        )
        mine: list[ReviewCode] = []
        theirs: list[ReviewCode] = []
        for row in rows:
            if row.audit_pk is None:
                mine.append(row)
            elif row.audit_pk == audit.id:
                theirs.append(row)
        coder, auditor = final_codes(mine), final_codes(theirs)
        a, b = set(coder), set(auditor)
        report.encounters += 1
        report.codes_coder += len(a)
        report.codes_auditor += len(b)
        report.codes_both += len(a & b)
        first = [c for c in coder if c[0] == "ICD10CM"][:1] == [c for c in auditor if c[0] == "ICD10CM"][:1]
        report.first_listed_agree += first
        if a == b:
            report.identical += 1
        else:
            report.disagreements.append(
                Disagreement(
                    encounter.encounter_id,
                    [c for _, c in coder if (_, c) not in b],
                    [c for _, c in auditor if (_, c) not in a],
                    first,
                )
            )
        for key in a | b:
            tally = per_code.setdefault(key, CodeAgreement(*key))
            tally.coder += key in a
            tally.auditor += key in b
            tally.both += key in a and key in b
    report.per_code = sorted(per_code.values(), key=lambda r: (r.agreement, -(r.coder + r.auditor), r.code))
    return report


def samples(session: Session) -> list[tuple[str, int, int, str, dt.datetime]]:
    """Every sample: id, reviews, submitted reviews, auditor, created."""
    counts: Counter[str] = Counter()
    done: Counter[str] = Counter()
    meta: dict[str, tuple[str, dt.datetime]] = {}
    for audit in session.scalars(select(AuditReview).order_by(AuditReview.created_at.desc(), AuditReview.id)):
        counts[audit.sample] += 1
        done[audit.sample] += audit.status == "submitted"
        meta.setdefault(audit.sample, (audit.auditor, audit.created_at))
    return [(s, counts[s], done[s], *meta[s]) for s in meta]
