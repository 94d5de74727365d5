"""CDS client authentication: the EHR's signed JWT, as the CDS Hooks specification says.

Each call to a CDS Hooks service carries ``Authorization: Bearer <JWT>``, signed by the EHR with
an asymmetric key (ES384 or RS384 recommended; ``none`` and HMAC are never accepted). The token is
accepted when

* its ``iss`` is a configured issuer (``CODESUGGEST_CDS_ISSUERS``), and a ``jku`` header, if sent,
  is that issuer's configured JWK Set URL (no other URL is ever fetched);
* the header has a ``kid`` found in the issuer's JWK Set (a URL or a local file, cached for
  ``CODESUGGEST_CDS_JWKS_CACHE_SECONDS``; an unknown ``kid`` reads the set again, at most once a
  minute, so that key rotation works) and an allowed ``alg`` that the key's type supports;
* the signature verifies; ``aud`` names the endpoint called (``<base>/cds-services/<id>``);
  ``exp``, ``iat`` and ``jti`` are present, it has not expired and lives no longer than
  ``CODESUGGEST_CDS_JWT_MAX_LIFETIME_SECONDS``;
* its ``jti`` has not been seen from this issuer before it expires (a table shared by every
  worker process: a replayed token gets 401).

Anything else is :class:`~service.errors.AuthenticationError` (401) with a message that says
which check failed. The REST API's API keys (:mod:`service.security`) are not involved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt import PyJWK, PyJWKSet
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from service.config import CdsIssuer, Settings
from service.db import Database
from service.errors import AuthenticationError
from service.models import CdsTokenId, utcnow
from service.security import Principal

logger = logging.getLogger(__name__)

JWKS_TIMEOUT_SECONDS = 5.0
# An unknown kid makes the key set be read again, but not more often than this.
MIN_REFRESH_SECONDS = 60.0
MAX_JTI_CHARS = 255


@dataclass(frozen=True, slots=True)
class CdsClient:
    """An authenticated CDS client.

    Attributes:
        iss: the issuer of its JWT.
        key_id: ``jwt:`` and 12 hex digits of sha256(iss): the caller's id in the audit log.
        tenant: the ``tenant`` claim, when sent.
    """

    iss: str
    key_id: str
    tenant: str | None = None

    @property
    def principal(self) -> Principal:
        """The caller as the service's other stores know callers."""
        return Principal(key_id=self.key_id, role="integration", name=self.iss)


def client_key_id(iss: str) -> str:
    """The audit id of an issuer: ``jwt:`` and the first 12 hex digits of sha256(iss).

    Args:
        iss: the issuer.

    Returns:
        16 characters (the width of the audit log's key column).
    """
    return "jwt:" + hashlib.sha256(iss.encode("utf-8")).hexdigest()[:12]


class JwksSource:
    """One issuer's JWK Set, read from its URL or file and kept for a while.

    Args:
        issuer: the issuer's configuration.
        cache_seconds: how long a read set is used.
        http: the HTTP client for URLs.
        clock: seconds (monotonic), replaceable in tests.
    """

    def __init__(
        self,
        issuer: CdsIssuer,
        cache_seconds: float,
        http: httpx.Client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.cache_seconds = cache_seconds
        self.http = http
        self.clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._algs: dict[str, str] = {}
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def key(self, kid: str) -> PyJWK:
        """The key with this ``kid``.

        Args:
            kid: the JWT header's key id.

        Returns:
            The public key.

        Raises:
            AuthenticationError: the set cannot be read, or has no such key.
        """
        with self._lock:
            now = self.clock()
            age = None if self._loaded_at is None else now - self._loaded_at
            stale = age is None or age >= self.cache_seconds
            if stale or (kid not in self._keys and age is not None and age >= MIN_REFRESH_SECONDS):
                self._keys, self._algs = self._load()
                self._loaded_at = now
            found = self._keys.get(kid)
        if found is None:
            raise AuthenticationError(f"kid {kid!r} is not in the JWK Set of issuer {self.issuer.iss!r}")
        return found

    def declared_alg(self, kid: str) -> str | None:
        """The ``alg`` the JWK Set declares for a key, if it declares one.

        Args:
            kid: the key id.

        Returns:
            The algorithm, or None.
        """
        return self._algs.get(kid)

    def _load(self) -> tuple[dict[str, PyJWK], dict[str, str]]:
        where = str(self.issuer.jwks_url or self.issuer.jwks_file)
        try:
            if self.issuer.jwks_url is not None:
                response = self.http.get(self.issuer.jwks_url, timeout=JWKS_TIMEOUT_SECONDS)
                response.raise_for_status()
                data: Any = response.json()
            else:
                assert self.issuer.jwks_file is not None
                data = json.loads(self.issuer.jwks_file.read_text("utf-8"))
            keys = PyJWKSet.from_dict(data).keys
            algs = {
                str(k["kid"]): str(k["alg"]) for k in data["keys"] if isinstance(k, dict) and "kid" in k and "alg" in k
            }
        except (httpx.HTTPError, OSError, ValueError, KeyError, TypeError, jwt.PyJWTError) as exc:
            logger.error("cannot read the JWK Set of issuer %s from %s: %s", self.issuer.iss, where, exc)
            raise AuthenticationError(f"the JWK Set of issuer {self.issuer.iss!r} cannot be read") from None
        by_kid = {k.key_id: k for k in keys if k.key_id}
        logger.info("read %d keys of issuer %s from %s", len(by_kid), self.issuer.iss, where)
        return by_kid, algs


class ReplayGuard:
    """The ``jti`` values already accepted, in the database so that every worker process sees them.

    Args:
        db: the service database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def first_use(self, iss: str, jti: str, expires_at: float) -> bool:
        """Record a token id; False if it was recorded before (a replay).

        Args:
            iss: the issuer.
            jti: the token id.
            expires_at: the token's ``exp`` (seconds since the epoch).

        Returns:
            True the first time.
        """
        digest = hashlib.sha256(f"{iss}\x00{jti}".encode()).hexdigest()
        row = CdsTokenId(id=digest, expires_at=dt.datetime.fromtimestamp(expires_at, dt.UTC))
        try:
            with self.db.session() as session:
                session.add(row)
        except IntegrityError:
            return False
        return True

    def purge_expired(self) -> int:
        """Forget token ids whose tokens have expired.

        Returns:
            How many were forgotten.
        """
        with self.db.session() as session:
            result = session.execute(delete(CdsTokenId).where(CdsTokenId.expires_at < utcnow()))
        return int(getattr(result, "rowcount", 0) or 0)


_FAILURES: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "the JWT has expired"),
    (jwt.ImmatureSignatureError, "the JWT is not valid yet (iat or nbf in the future)"),
    (jwt.InvalidAudienceError, "the JWT's aud is not this endpoint"),
    (jwt.InvalidIssuerError, "the JWT's iss does not match"),
    (jwt.MissingRequiredClaimError, "the JWT lacks a required claim"),
    (jwt.InvalidSignatureError, "the JWT's signature does not verify"),
    (jwt.InvalidAlgorithmError, "the JWT's alg does not fit the key"),
)


class CdsTokenVerifier:
    """Checks CDS client JWTs (see the module docstring).

    Args:
        issuers: the trusted issuers.
        algorithms: JWS algorithms accepted.
        max_lifetime_seconds: longest validity accepted.
        leeway_seconds: clock difference tolerated.
        cache_seconds: how long a JWK Set is used.
        replay: the record of token ids seen.
        http: the HTTP client for JWK Set URLs (one is made when omitted).
    """

    def __init__(
        self,
        issuers: Sequence[CdsIssuer],
        algorithms: Sequence[str],
        max_lifetime_seconds: int,
        leeway_seconds: int,
        cache_seconds: int,
        replay: ReplayGuard,
        http: httpx.Client | None = None,
    ) -> None:
        self.algorithms = list(algorithms)
        self.max_lifetime = max_lifetime_seconds
        self.leeway = leeway_seconds
        self.replay = replay
        client = http or httpx.Client(follow_redirects=False)
        self.sources = {i.iss: JwksSource(i, cache_seconds, client) for i in issuers}

    @classmethod
    def from_settings(cls, settings: Settings, db: Database, http: httpx.Client | None = None) -> CdsTokenVerifier:
        """Build the verifier the settings describe.

        Args:
            settings: deployment settings (``cds_*``).
            db: the database for the replay record.
            http: the HTTP client for JWK Set URLs.

        Returns:
            The verifier.
        """
        return cls(
            settings.cds_issuers,
            settings.cds_algorithms,
            settings.cds_jwt_max_lifetime_seconds,
            settings.cds_jwt_leeway_seconds,
            settings.cds_jwks_cache_seconds,
            ReplayGuard(db),
            http,
        )

    def verify(self, authorization: str | None, audiences: Sequence[str]) -> CdsClient:
        """Check the ``Authorization`` header of a CDS Hooks call.

        Args:
            authorization: the header's value.
            audiences: the ``aud`` values that name the endpoint called.

        Returns:
            The client.

        Raises:
            AuthenticationError: no token, or one that fails a check (the message says which).
        """
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError(
                "a CDS Hooks call needs 'Authorization: Bearer <JWT>' signed by a configured CDS client"
            )
        if not self.sources:
            raise AuthenticationError("no CDS client is configured on this service (CODESUGGEST_CDS_ISSUERS)")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthenticationError("the bearer token is not a JWT") from None
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        if alg not in self.algorithms:
            raise AuthenticationError(f"JWT alg {alg!r} is not accepted; use one of {', '.join(self.algorithms)}")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError("the JWT header has no kid")
        if typ is not None and str(typ).upper() != "JWT":
            raise AuthenticationError(f"JWT typ must be 'JWT', not {typ!r}")
        iss = unverified.get("iss")
        source = self.sources.get(iss) if isinstance(iss, str) else None
        if source is None or not isinstance(iss, str):
            raise AuthenticationError(f"JWT issuer {iss!r} is not a configured CDS client")
        jku = header.get("jku")
        if jku is not None and jku != source.issuer.jwks_url:
            raise AuthenticationError("the JWT's jku is not the configured JWK Set URL of its issuer")
        key = source.key(kid)
        declared = source.declared_alg(kid)
        families = {"EC": ("ES",), "RSA": ("RS", "PS")}.get(str(key.key_type), ())
        if (declared and declared != alg) or not str(alg).startswith(families):
            raise AuthenticationError(f"JWT alg {alg!r} does not fit key {kid!r} ({declared or key.key_type})")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=list(audiences),
                issuer=iss,
                leeway=self.leeway,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except (TypeError, ValueError) as exc:  # PyJWT's key errors are not all PyJWTError
            raise AuthenticationError(f"JWT alg {alg!r} does not fit key {kid!r}: {type(exc).__name__}") from None
        except jwt.PyJWTError as exc:
            reason = next((text for kind, text in _FAILURES if isinstance(exc, kind)), "the JWT is not valid")
            if isinstance(exc, jwt.InvalidAudienceError):
                reason += f" (expected {' or '.join(audiences)})"
            elif isinstance(exc, jwt.MissingRequiredClaimError):
                reason += f" ({exc.claim})"
            raise AuthenticationError(reason) from None
        return self._check_claims(iss, claims)

    def _check_claims(self, iss: str, claims: dict[str, Any]) -> CdsClient:
        exp, iat, jti = claims["exp"], claims["iat"], claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
            raise AuthenticationError(f"the JWT's jti must be a string of 1 to {MAX_JTI_CHARS} characters")
        if exp - iat > self.max_lifetime or exp - time.time() > self.max_lifetime + self.leeway:
            raise AuthenticationError(
                f"the JWT lives longer than {self.max_lifetime} s (CODESUGGEST_CDS_JWT_MAX_LIFETIME_SECONDS)"
            )
        if not self.replay.first_use(iss, jti, float(exp)):
            raise AuthenticationError("the JWT was used before (jti replayed): sign a new one for every call")
        tenant = claims.get("tenant")
        return CdsClient(iss=iss, key_id=client_key_id(iss), tenant=tenant if isinstance(tenant, str) else None)
