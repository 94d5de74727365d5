"""API keys with roles: creation, listing, revocation and authentication.

A key reads ``csk_<id>_<secret>``: a 12-hex-digit public id and a 64-hex-digit random secret.
The database keeps the id, the role and ``sha256(id ":" secret)``; the secret is shown once,
when the key is created, and compared in constant time. Clients send the key as
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Roles and what they may call (:data:`ROLE_MATRIX`, also in the README's Service section):

========================================  ===========  =====  =====
endpoint                                  integration  coder  admin
========================================  ===========  =====  =====
``GET /health/live``, ``/health/ready``   no key needed
``GET /v1/model``, ``GET /v1/codes...``   yes          yes    yes
``POST /v1/suggestions``                  yes          yes    yes
``POST /v1/suggestions/batch``            yes          no     yes
``GET /v1/jobs/{id}``                     own jobs     no     all
``POST /v1/feedback``                     no           yes    yes
``POST /v1/encounters[/batch]``           yes          no     yes
``GET /v1/encounters/{id}``               yes          yes    yes
the workbench ``/ui/`` (service.ui.auth)  no           yes    yes
keys (``codesuggest keys``, DB access)    no           no     yes
========================================  ===========  =====  =====
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.errors import InputError
from service.errors import AuthenticationError, NotFoundError
from service.models import ApiKey, utcnow

logger = logging.getLogger(__name__)

Role = Literal["integration", "coder", "admin"]
ROLES: tuple[str, ...] = get_args(Role)

# Which roles may call which group of endpoints.
ROLE_MATRIX: dict[str, frozenset[str]] = {
    "read": frozenset({"integration", "coder", "admin"}),
    "suggest": frozenset({"integration", "coder", "admin"}),
    "batch": frozenset({"integration", "admin"}),
    "jobs": frozenset({"integration", "admin"}),
    "feedback": frozenset({"coder", "admin"}),
    "admin": frozenset({"admin"}),
}

TOKEN_PREFIX = "csk"
_TOKEN_RE = re.compile(rf"^{TOKEN_PREFIX}_([0-9a-f]{{12}})_([0-9a-f]{{64}})$")
INSECURE_DEV_KEY_ID = "insecure-dev"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's public id and its role."""

    key_id: str
    role: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as ``codesuggest keys list`` shows it (no secret, no hash)."""

    id: str
    name: str
    role: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        """True until the key is revoked."""
        return self.revoked_at is None


def hash_secret(key_id: str, secret: str) -> str:
    """Return the stored form of a key's secret.

    Args:
        key_id: the public id.
        secret: the random secret.

    Returns:
        Hex sha256 of ``id:secret``.
    """
    return hashlib.sha256(f"{key_id}:{secret}".encode("ascii")).hexdigest()


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.name, row.role, row.created_at, row.revoked_at)


def create_key(session: Session, name: str, role: str) -> tuple[KeyInfo, str]:
    """Create an API key.

    Args:
        session: an open database session (the caller commits).
        name: who or what the key is for.
        role: ``integration``, ``coder`` or ``admin``.

    Returns:
        The key's description and the full token, which is not stored and cannot be shown again.

    Raises:
        InputError: unknown role or empty name.
    """
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    name = name.strip()
    if not name or len(name) > 200:
        raise InputError("a key name must have 1 to 200 characters")
    key_id = secrets.token_hex(6)
    secret = secrets.token_hex(32)
    row = ApiKey(id=key_id, name=name, role=role, secret_sha256=hash_secret(key_id, secret))
    session.add(row)
    session.flush()
    logger.info("created API key %s (%s)", key_id, role)
    return _info(row), f"{TOKEN_PREFIX}_{key_id}_{secret}"


def list_keys(session: Session, include_revoked: bool = True) -> list[KeyInfo]:
    """List the API keys, oldest first.

    Args:
        session: an open database session.
        include_revoked: also list revoked keys.

    Returns:
        The keys.
    """
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return [_info(row) for row in session.scalars(query)]


def revoke_key(session: Session, key_id: str) -> KeyInfo:
    """Revoke a key; later calls with it get 401. Revoking twice keeps the first time.

    Args:
        session: an open database session (the caller commits).
        key_id: the key's public id (``csk_<id>_...``: the 12 hex digits).

    Returns:
        The revoked key.

    Raises:
        NotFoundError: no key has this id.
    """
    row = session.get(ApiKey, key_id.strip())
    if row is None:
        raise NotFoundError(f"no API key with id {key_id!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        logger.info("revoked API key %s", row.id)
    return _info(row)


def authenticate(session: Session, token: str | None) -> Principal:
    """Check an API key and return who it belongs to.

    Args:
        session: an open database session.
        token: the key as sent, or None when the request carried none.

    Returns:
        The caller.

    Raises:
        AuthenticationError: no key, a malformed, unknown or revoked key, or a wrong secret.
    """
    if not token:
        raise AuthenticationError("an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    match = _TOKEN_RE.match(token.strip())
    if match is None:
        raise AuthenticationError("malformed API key (expected csk_<id>_<secret>)")
    key_id, secret = match.groups()
    row = session.get(ApiKey, key_id)
    # Hash even for unknown ids so that the answer time does not reveal which ids exist.
    expected = row.secret_sha256 if row is not None else "0" * 64
    if not hmac.compare_digest(expected, hash_secret(key_id, secret)) or row is None:
        raise AuthenticationError("invalid API key")
    if row.revoked_at is not None:
        raise AuthenticationError(f"API key {key_id} was revoked")
    return Principal(key_id=row.id, role=row.role, name=row.name)
