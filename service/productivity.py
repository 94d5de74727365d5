"""Productivity figures of the workbench: charts coded per day, time per chart, acceptance.

Computed from the encounters' review times and working sets (never note text): a chart is an
encounter submitted by a coder; its time runs from the start of the coder's review to the
submission; the acceptance rate is the share of the suggested code-set lines the coder kept as
they were (accepted), against those rejected or changed.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import Encounter, ReviewCode, utcnow

MAX_DAYS = 366


@dataclass(slots=True)
class CoderFigures:
    """One coder's figures over the period."""

    coder: str
    per_day: dict[dt.date, int] = field(default_factory=dict)
    minutes: list[float] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0
    modified: int = 0
    added: int = 0

    @property
    def charts(self) -> int:
        """Encounters submitted."""
        return sum(self.per_day.values())

    @property
    def median_minutes(self) -> float | None:
        """Median time per chart."""
        return statistics.median(self.minutes) if self.minutes else None

    @property
    def acceptance(self) -> float | None:
        """Suggested lines accepted as they were, out of those decided."""
        decided = self.accepted + self.rejected + self.modified
        return self.accepted / decided if decided else None


@dataclass(slots=True)
class Productivity:
    """Figures per coder over consecutive days."""

    days: list[dt.date]
    coders: list[CoderFigures]


def productivity(session: Session, days: int, coder: str | None = None, today: dt.date | None = None) -> Productivity:
    """Compute the figures of the last ``days`` days.

    Args:
        session: an open session.
        days: how many days back, today included (1 to 366).
        coder: one coder only (a coder sees their own figures).
        today: the last day (tests).

    Returns:
        The figures, coders by name.
    """
    days = max(1, min(MAX_DAYS, days))
    today = today or utcnow().date()
    first = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first, dt.time(), dt.UTC)
    query = select(Encounter).where(Encounter.status == "submitted", Encounter.submitted_at >= since)
    if coder:
        query = query.where(Encounter.submitted_by == coder)
    encounters = list(session.scalars(query))
    figures: dict[str, CoderFigures] = {}
    by_pk: dict[int, CoderFigures] = {}
    for enc in encounters:
        if enc.submitted_by is None or enc.submitted_at is None:
            continue
        row = figures.setdefault(enc.submitted_by, CoderFigures(enc.submitted_by))
        day = enc.submitted_at.date()
        row.per_day[day] = row.per_day.get(day, 0) + 1
        if enc.review_started_at is not None:
            row.minutes.append(max(0.0, (enc.submitted_at - enc.review_started_at).total_seconds() / 60))
        by_pk[enc.id] = row
    pks = list(by_pk)
    for start in range(0, len(pks), 500):
        chunk = pks[start : start + 500]
        lines = session.scalars(
            select(ReviewCode).where(ReviewCode.encounter_pk.in_(chunk), ReviewCode.audit_pk.is_(None))
        )
        for line in lines:
            row = by_pk[line.encounter_pk]
            if line.origin == "code_set":
                if line.status == "accepted":
                    row.accepted += 1
                elif line.status == "rejected":
                    row.rejected += 1
                elif line.status == "modified":
                    row.modified += 1
            else:
                row.added += 1
    span = [first + dt.timedelta(days=i) for i in range(days)]
    return Productivity(span, [figures[name] for name in sorted(figures)])
