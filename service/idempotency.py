"""``Idempotency-Key`` on POST requests: a retry gets the stored answer, not a second run.

Keys are scoped to the caller's API key. The first request with a key claims it (a row in
``idempotency_records``); its answer is stored sealed with a key derived from the request body
(:mod:`service.sealing`), so the database never holds readable note-derived text. A retry with
the same key and the same body gets the stored answer (same ``request_id``; header
``Idempotent-Replayed: true``); the same key with another body gets 422; a retry while the first
request still runs gets 409. Records expire after ``CODESUGGEST_IDEMPOTENCY_TTL_SECONDS``.
A request that fails releases its key, so a corrected retry may reuse it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import Response
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from service.audit import RequestInfo
from service.db import Database
from service.errors import IdempotencyInProgressError, IdempotencyKeyReusedError
from service.models import IdempotencyRecord, utcnow
from service.sealing import SealError, derive_key, seal, unseal

logger = logging.getLogger(__name__)

IN_PROGRESS = "in_progress"
DONE = "done"


@dataclass(slots=True)
class Answer:
    """A route's answer before it is sent: status, response model and extra headers."""

    status_code: int
    body: BaseModel
    headers: dict[str, str] | None = None

    def apply(self, response: Response) -> None:
        """Give the route's response this answer's status code and headers (the body is returned).

        Args:
            response: the response FastAPI hands the route.
        """
        response.status_code = self.status_code
        response.headers.update(self.headers or {})


def canonical_body(route: str, body: BaseModel) -> bytes:
    """The bytes that identify a request: route plus the validated body in canonical JSON.

    Two bodies that differ only in whitespace, key order or omitted defaults are the same
    request.

    Args:
        route: method and route template, e.g. ``POST /v1/suggestions``.
        body: the validated request body.

    Returns:
        Canonical bytes.
    """
    document = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return f"{route}\n{document}".encode()


class IdempotencyStore:
    """Claims, stores and replays idempotent answers.

    Args:
        db: the service database.
        ttl_seconds: how long a stored answer can be replayed.
    """

    def __init__(self, db: Database, ttl_seconds: int) -> None:
        self.db = db
        self.ttl = dt.timedelta(seconds=ttl_seconds)

    def run(
        self,
        *,
        key_id: str,
        idem_key: str | None,
        route: str,
        body: BaseModel,
        info: RequestInfo,
        produce: Callable[[], Answer],
        models: Mapping[int, type[BaseModel]],
    ) -> Answer:
        """Answer a POST, running ``produce`` at most once per idempotency key.

        Args:
            key_id: the caller's API key id (the scope of idempotency keys).
            idem_key: the ``Idempotency-Key`` header, or None to just run ``produce``.
            route: method and route template.
            body: the validated request body.
            info: the request's log/audit info (marked as a replay when one is served).
            produce: computes the answer.
            models: the response model of each status code ``produce`` answers with (a stored
                answer is read back into it).

        Returns:
            The fresh or the stored answer.

        Raises:
            IdempotencyKeyReusedError: the key was used with a different body (422).
            IdempotencyInProgressError: the first request with this key is still running (409).
        """
        if idem_key is None:
            return produce()
        material = canonical_body(route, body)
        body_hash = hashlib.sha256(b"idempotency.match\x00" + material).hexdigest()
        seal_key = derive_key("idempotency.seal", material)
        replay = self._claim(key_id, idem_key, body_hash, info.request_id, seal_key, models)
        if replay is not None:
            stored, original_request_id = replay
            info.replay = True
            info.request_id = original_request_id  # the middleware echoes it in X-Request-ID
            return stored
        try:
            answer = produce()
        except BaseException:
            self._release(key_id, idem_key)
            raise
        self._store(key_id, idem_key, answer, seal_key)
        return answer

    def _claim(
        self,
        key_id: str,
        idem_key: str,
        body_hash: str,
        request_id: str,
        seal_key: bytes,
        models: Mapping[int, type[BaseModel]],
    ) -> tuple[Answer, str] | None:
        now = utcnow()
        with self.db.session() as session:
            session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.key_id == key_id,
                    IdempotencyRecord.idem_key == idem_key,
                    IdempotencyRecord.expires_at < now,
                )
            )
        try:
            with self.db.session() as session:
                session.add(
                    IdempotencyRecord(
                        key_id=key_id,
                        idem_key=idem_key,
                        body_sha256=body_hash,
                        state=IN_PROGRESS,
                        request_id=request_id,
                        created_at=now,
                        expires_at=now + self.ttl,
                    )
                )
            return None
        except IntegrityError:
            pass
        with self.db.session() as session:
            record = session.scalars(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.key_id == key_id, IdempotencyRecord.idem_key == idem_key
                )
            ).one_or_none()
            if record is None:  # released between our insert and this read: run it ourselves
                return self._claim(key_id, idem_key, body_hash, request_id, seal_key, models)
            if record.body_sha256 != body_hash:
                raise IdempotencyKeyReusedError(
                    "this Idempotency-Key was already used with a different request body; "
                    "use a new key for a new request"
                )
            if record.state != DONE or record.response is None or record.status_code is None:
                raise IdempotencyInProgressError(
                    "a request with this Idempotency-Key is still being processed; retry later"
                )
            try:
                stored = json.loads(unseal(seal_key, record.response))
                replayed = models[record.status_code].model_validate(stored["body"])
            except (SealError, ValueError, KeyError) as exc:
                raise IdempotencyKeyReusedError(
                    "the stored answer for this Idempotency-Key cannot be replayed; use a new key"
                ) from exc
            logger.info("replaying the answer of request %s", record.request_id)
            headers = {**stored.get("headers", {}), "Idempotent-Replayed": "true"}
            return Answer(record.status_code, replayed, headers), record.request_id

    def _store(self, key_id: str, idem_key: str, answer: Answer, seal_key: bytes) -> None:
        document = {"body": answer.body.model_dump(mode="json"), "headers": answer.headers or {}}
        blob = seal(seal_key, json.dumps(document).encode("utf-8"))
        with self.db.session() as session:
            record = session.scalars(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.key_id == key_id, IdempotencyRecord.idem_key == idem_key
                )
            ).one_or_none()
            if record is not None:
                record.state = DONE
                record.status_code = answer.status_code
                record.response = blob

    def _release(self, key_id: str, idem_key: str) -> None:
        with self.db.session() as session:
            session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.key_id == key_id,
                    IdempotencyRecord.idem_key == idem_key,
                    IdempotencyRecord.state == IN_PROGRESS,
                )
            )

    def purge_expired(self) -> int:
        """Delete every expired record.

        Returns:
            How many were deleted.
        """
        with self.db.session() as session:
            result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < utcnow()))
            return int(getattr(result, "rowcount", 0) or 0)
