"""The cards sent to EHRs, and feedback on them written to the coders' feedback store.

A card is remembered (its uuid, the service, the caller, the encounter, the codes its
suggestions add; no note text) for ``CODESUGGEST_CDS_CARD_TTL_SECONDS``. Feedback names the card
and, for ``accepted``, the suggestions taken: each becomes an ``accepted`` decision; an
``overridden`` card makes every code it offered ``rejected``, with the override reason and the
user's comment. The decisions go through :func:`service.feedback.store_feedback`, the same store
and checks as ``POST /v1/feedback``: note id ``Encounter/<id>``, user the hook's ``userId``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from sqlalchemy import delete, select

from service.cds.cards import SentCard
from service.cds.services import FeedbackItem
from service.config import Settings
from service.db import Database
from service.feedback import store_feedback
from service.jwt_auth import CdsClient, CdsTokenVerifier
from service.models import CdsCard, utcnow
from service.schemas import FeedbackRequest as CoderFeedback

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CardContext:
    """What a card was about, kept with it."""

    service_id: str
    hook_instance: str
    request_id: str
    note_id: str
    user: str
    setting: str
    model_version: str


class CardStore:
    """The cards sent, by uuid, until they expire.

    Args:
        db: the service database.
        ttl_seconds: how long a card is kept.
    """

    def __init__(self, db: Database, ttl_seconds: int) -> None:
        self.db = db
        self.ttl = dt.timedelta(seconds=ttl_seconds)

    def save(self, cards: Sequence[SentCard], context: CardContext, client: CdsClient) -> None:
        """Remember cards sent to a client.

        Args:
            cards: the cards with a uuid.
            context: what they were about.
            client: who received them (only it may send feedback on them).
        """
        now = utcnow()
        with self.db.session() as session:
            for card in cards:
                session.add(
                    CdsCard(
                        id=card.uuid,
                        service_id=context.service_id,
                        key_id=client.key_id,
                        hook_instance=context.hook_instance[:100],
                        request_id=context.request_id,
                        note_id=context.note_id[:200],
                        user=context.user[:200],
                        setting=context.setting,
                        model_version=context.model_version[:100],
                        suggestions=json.dumps(
                            [{"uuid": o.uuid, "system": o.system, "code": o.code} for o in card.offered]
                        ),
                        created_at=now,
                        expires_at=now + self.ttl,
                    )
                )

    def find(self, card_ids: Sequence[str], service_id: str, client: CdsClient) -> dict[str, CdsCard]:
        """The unexpired cards with these uuids that this service sent to this client.

        Args:
            card_ids: the uuids.
            service_id: the service the feedback is for.
            client: the caller.

        Returns:
            uuid -> card, for those found.
        """
        with self.db.session() as session:
            rows = session.scalars(
                select(CdsCard).where(
                    CdsCard.id.in_(set(card_ids)),
                    CdsCard.service_id == service_id,
                    CdsCard.key_id == client.key_id,
                    CdsCard.expires_at >= utcnow(),
                )
            ).all()
            session.expunge_all()
        return {row.id: row for row in rows}

    def purge_expired(self) -> int:
        """Forget expired cards.

        Returns:
            How many were forgotten.
        """
        with self.db.session() as session:
            result = session.execute(delete(CdsCard).where(CdsCard.expires_at < utcnow()))
        return int(getattr(result, "rowcount", 0) or 0)


def _reason(item: FeedbackItem) -> str | None:
    if item.overrideReason is None:
        return None
    parts = []
    if item.overrideReason.reason is not None:
        coding = item.overrideReason.reason
        parts.append(f"{coding.display or coding.code} ({coding.system}|{coding.code})")
    if item.overrideReason.userComment:
        parts.append(item.overrideReason.userComment)
    return "; ".join(parts)[:1000] or None


def _problem(index: int, field: str, message: str) -> dict[str, Any]:
    return {"loc": ("body", "feedback", index, field), "msg": message, "type": "value_error", "input": None}


def record_feedback(
    items: Sequence[FeedbackItem],
    service_id: str,
    client: CdsClient,
    cards: CardStore,
    kb: Any,
    request_id: str,
) -> int:
    """Check CDS Hooks feedback against the cards sent and store it as coders' decisions.

    Args:
        items: the feedback.
        service_id: the service it was posted to.
        client: the caller.
        cards: the card store.
        kb: the knowledge base (the feedback store checks codes with it).
        request_id: the request's id.

    Returns:
        How many decisions were stored.

    Raises:
        RequestValidationError: an unknown or expired card, or a suggestion not on its card; every
            bad item is named and nothing is stored.
    """
    found = cards.find([item.card for item in items], service_id, client)
    problems: list[dict[str, Any]] = []
    batches: list[tuple[CdsCard, CoderFeedback]] = []
    for i, item in enumerate(items):
        card = found.get(item.card)
        if card is None:
            problems.append(
                _problem(i, "card", f"no card {item.card!r} from this service for this client (or it expired)")
            )
            continue
        offered = {o["uuid"]: o for o in json.loads(card.suggestions)}
        if item.outcome == "accepted":
            chosen = []
            for j, accepted in enumerate(item.acceptedSuggestions or []):
                if accepted.id not in offered:
                    problems.append(
                        {
                            "loc": ("body", "feedback", i, "acceptedSuggestions", j, "id"),
                            "msg": f"suggestion {accepted.id!r} is not on card {item.card!r}",
                            "type": "value_error",
                            "input": None,
                        }
                    )
                else:
                    chosen.append(offered[accepted.id])
            decisions = [{"code": o["code"], "system": o["system"], "decision": "accepted"} for o in chosen]
        else:
            reason = _reason(item)
            decisions = [
                {"code": o["code"], "system": o["system"], "decision": "rejected", "reason": reason}
                for o in offered.values()
            ]
        if decisions:
            body = CoderFeedback.model_validate(
                {
                    "note_id": card.note_id,
                    "user": card.user,
                    "suggestion_request_id": card.request_id,
                    "setting": card.setting,
                    "decisions": decisions,
                }
            )
            batches.append((card, body))
    if problems:
        raise RequestValidationError(problems)
    stored = 0
    for card, body in batches:
        count, _ = store_feedback(
            cards.db,
            kb,
            body,
            client.principal,
            request_id,
            store_text=False,
            model_version=card.model_version,
        )
        stored += count
    logger.info("request %s: %d CDS feedback items -> %d decisions", request_id, len(items), stored)
    return stored


@dataclass(slots=True)
class CdsState:
    """What the CDS Hooks routes keep on ``app.state.cds``: the JWT verifier and the card store."""

    verifier: CdsTokenVerifier
    cards: CardStore

    @classmethod
    def create(cls, settings: Settings, db: Database) -> CdsState:
        """Build it from the settings.

        Args:
            settings: deployment settings.
            db: the service database.

        Returns:
            The state.
        """
        return cls(CdsTokenVerifier.from_settings(settings, db), CardStore(db, settings.cds_card_ttl_seconds))

    def purge_expired(self) -> None:
        """Forget expired token ids and cards (run by the service's housekeeper, which logs errors)."""
        tokens, cards = self.verifier.replay.purge_expired(), self.cards.purge_expired()
        if tokens or cards:
            logger.debug("forgot %d expired CDS token ids and %d cards", tokens, cards)
