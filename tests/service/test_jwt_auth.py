"""CDS client JWTs: signature, issuer, audience, lifetime, replay, key sets from a file or a URL."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from service.config import CdsIssuer
from service.db import Database
from service.errors import AuthenticationError
from service.jwt_auth import MIN_REFRESH_SECONDS, CdsTokenVerifier, JwksSource, ReplayGuard, client_key_id
from tests.service.ehr_keys import EhrKeys

AUD = "https://coding.test.invalid/cds-services/codesuggest-discharge-coding"
JWKS_URL = "https://ehr.test.invalid/jwks.json"


@pytest.fixture(scope="module")
def ehr() -> EhrKeys:
    """A test EHR with freshly generated ES384 and RS384 key pairs."""
    return EhrKeys()


@pytest.fixture
def db(tmp_path: Path, migrated_db: Path) -> Database:
    """A migrated database of this test."""
    target = tmp_path / "jwt.sqlite3"
    target.write_bytes(migrated_db.read_bytes())
    return Database(f"sqlite:///{target}")


@pytest.fixture
def verifier(ehr: EhrKeys, db: Database, tmp_path: Path) -> CdsTokenVerifier:
    """A verifier trusting the test EHR through a JWK Set file."""
    issuer = CdsIssuer(iss=ehr.iss, jwks_file=ehr.write_jwks(tmp_path / "jwks.json"))
    return CdsTokenVerifier([issuer], ["ES384", "RS384"], 600, 5, 3600, ReplayGuard(db))


@pytest.mark.parametrize("kid", ["ec-1", "rsa-1"])
def test_jwt_auth_accepts_es384_and_rs384_tokens_of_a_configured_issuer(
    verifier: CdsTokenVerifier, ehr: EhrKeys, kid: str
) -> None:
    client = verifier.verify("Bearer " + ehr.token(AUD, kid=kid, tenant="hospital-1"), [AUD])
    assert (client.iss, client.tenant, client.key_id) == (ehr.iss, "hospital-1", client_key_id(ehr.iss))
    assert len(client.key_id) == 16 and client.principal.role == "integration"


def test_jwt_auth_accepts_aud_as_a_list(verifier: CdsTokenVerifier, ehr: EhrKeys) -> None:
    assert verifier.verify("Bearer " + ehr.token([AUD, "https://other"]), [AUD]).iss == ehr.iss


def _forged(ehr: EhrKeys) -> str:
    other = EhrKeys()
    return other.token(AUD)  # same kid and issuer, another key pair


def _hs256(ehr: EhrKeys) -> str:
    payload = {"iss": ehr.iss, "aud": AUD, "exp": int(time.time()) + 60, "iat": int(time.time()), "jti": "h"}
    return jwt.encode(payload, "x" * 32, algorithm="HS256", headers={"kid": "ec-1"})


def _none(ehr: EhrKeys) -> str:
    payload = {"iss": ehr.iss, "aud": AUD, "exp": int(time.time()) + 60, "iat": int(time.time()), "jti": "n"}
    return jwt.encode(payload, None, algorithm="none", headers={"kid": "ec-1"})


def _wrong_alg_for_key(ehr: EhrKeys) -> str:
    header, payload, signature = ehr.token(AUD, kid="ec-1").split(".")
    claims = json.loads(jwt.utils.base64url_decode(header))
    claims["alg"] = "RS384"
    forged_header = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return f"{forged_header}.{payload}.{signature}"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda e: None, "needs 'Authorization: Bearer <JWT>'"),
        (lambda e: "", "needs 'Authorization: Bearer <JWT>'"),
        (lambda e: "Basic abc", "needs 'Authorization: Bearer <JWT>'"),
        (lambda e: "Bearer not-a-jwt", "not a JWT"),
        (lambda e: "Bearer " + e.token("https://other.invalid/cds-services/x"), "aud is not this endpoint"),
        (lambda e: "Bearer " + e.token(AUD, lifetime=-120), "expired"),
        (lambda e: "Bearer " + e.token(AUD, lifetime=86_400), "lives longer"),
        (lambda e: "Bearer " + e.token(AUD, iat=int(time.time()) + 3600), "not valid yet"),
        (lambda e: "Bearer " + e.token(AUD, drop=("jti",)), "lacks a required claim (jti)"),
        (lambda e: "Bearer " + e.token(AUD, drop=("exp",)), "lacks a required claim (exp)"),
        (lambda e: "Bearer " + e.token(AUD, drop=("iat",)), "lacks a required claim (iat)"),
        (lambda e: "Bearer " + e.token(AUD, iss="https://evil.invalid"), "not a configured CDS client"),
        (lambda e: "Bearer " + e.token(AUD, headers={"kid": "unknown"}), "not in the JWK Set"),
        (lambda e: "Bearer " + e.token(AUD, headers={"typ": "at+jwt"}), "typ must be 'JWT'"),
        (lambda e: "Bearer " + e.token(AUD, headers={"jku": "https://evil.invalid/jwks"}), "jku"),
        (lambda e: "Bearer " + e.token(AUD, jti=""), "jti must be a string"),
        (lambda e: "Bearer " + _forged(e), "signature does not verify"),
        (lambda e: "Bearer " + _hs256(e), "alg 'HS256' is not accepted"),
        (lambda e: "Bearer " + _none(e), "alg 'none' is not accepted"),
        (lambda e: "Bearer " + _wrong_alg_for_key(e), "JWT"),
    ],
)
def test_jwt_auth_refuses_bad_tokens_with_a_reason(
    verifier: CdsTokenVerifier, ehr: EhrKeys, make: Callable[[EhrKeys], str | None], message: str
) -> None:
    with pytest.raises(AuthenticationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        verifier.verify(make(ehr), [AUD])


def test_jwt_auth_refuses_a_replayed_jti_until_it_expires(verifier: CdsTokenVerifier, ehr: EhrKeys) -> None:
    token = ehr.token(AUD, lifetime=2)
    verifier.verify("Bearer " + token, [AUD])
    with pytest.raises(AuthenticationError, match="replayed"):
        verifier.verify("Bearer " + token, [AUD])
    same_jti = ehr.token(AUD, jti=jwt.decode(token, options={"verify_signature": False})["jti"])
    with pytest.raises(AuthenticationError, match="replayed"):
        verifier.verify("Bearer " + same_jti, [AUD])
    time.sleep(3)
    assert verifier.replay.purge_expired() == 1


def test_jwt_auth_replays_are_seen_by_every_worker(ehr: EhrKeys, db: Database, tmp_path: Path) -> None:
    issuer = CdsIssuer(iss=ehr.iss, jwks_file=ehr.write_jwks(tmp_path / "jwks.json"))
    first, second = (CdsTokenVerifier([issuer], ["ES384"], 600, 5, 3600, ReplayGuard(db)) for _ in range(2))
    token = "Bearer " + ehr.token(AUD)
    first.verify(token, [AUD])
    with pytest.raises(AuthenticationError, match="replayed"):
        second.verify(token, [AUD])


def test_jwt_auth_without_configured_issuers_refuses_everything(ehr: EhrKeys, db: Database) -> None:
    verifier = CdsTokenVerifier([], ["ES384"], 600, 5, 3600, ReplayGuard(db))
    with pytest.raises(AuthenticationError, match="CODESUGGEST_CDS_ISSUERS"):
        verifier.verify("Bearer " + ehr.token(AUD), [AUD])


def test_jwt_auth_only_allowed_algorithms(ehr: EhrKeys, db: Database, tmp_path: Path) -> None:
    issuer = CdsIssuer(iss=ehr.iss, jwks_file=ehr.write_jwks(tmp_path / "jwks.json"))
    verifier = CdsTokenVerifier([issuer], ["ES384"], 600, 5, 3600, ReplayGuard(db))
    with pytest.raises(AuthenticationError, match="RS384"):
        verifier.verify("Bearer " + ehr.token(AUD, kid="rsa-1"), [AUD])


class FakeClock:
    """Monotonic seconds the test moves forward."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _served(keys: EhrKeys, hits: list[str]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        hits.append(str(request.url))
        return httpx.Response(200, json=keys.jwks())

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_jwt_auth_jwks_url_is_cached_and_reread_for_a_new_kid(ehr: EhrKeys) -> None:
    keys = EhrKeys()
    hits: list[str] = []
    clock = FakeClock()
    source = JwksSource(CdsIssuer(iss=keys.iss, jwks_url=JWKS_URL), 3600, _served(keys, hits), clock)
    assert source.key("ec-1").key_id == "ec-1"
    source.key("rsa-1")
    assert hits == [JWKS_URL]  # cached
    keys.add_key("ec-2", "ES384")  # the EHR rotates its keys
    with pytest.raises(AuthenticationError, match="ec-2"):
        source.key("ec-2")  # too soon to read the set again
    clock.now += MIN_REFRESH_SECONDS
    assert source.key("ec-2").key_id == "ec-2"
    assert len(hits) == 2
    clock.now += 3600
    source.key("ec-1")
    assert len(hits) == 3  # the cache expired


def test_jwt_auth_verifies_with_a_jwks_url_and_its_jku(ehr: EhrKeys, db: Database) -> None:
    hits: list[str] = []
    issuer = CdsIssuer(iss=ehr.iss, jwks_url=JWKS_URL)
    verifier = CdsTokenVerifier([issuer], ["ES384", "RS384"], 600, 5, 3600, ReplayGuard(db), _served(ehr, hits))
    assert verifier.verify("Bearer " + ehr.token(AUD, headers={"jku": JWKS_URL}), [AUD]).iss == ehr.iss
    assert hits == [JWKS_URL]


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx.Response(500), "server error"),
        (httpx.Response(200, text="not json"), "not json"),
        (httpx.Response(200, json={"keys": []}), "empty"),
    ],
)
def test_jwt_auth_unreadable_jwks_is_a_401_not_a_crash(
    ehr: EhrKeys, db: Database, response: httpx.Response, reason: str
) -> None:
    http = httpx.Client(transport=httpx.MockTransport(lambda request: response))
    verifier = CdsTokenVerifier(
        [CdsIssuer(iss=ehr.iss, jwks_url=JWKS_URL)], ["ES384"], 600, 5, 3600, ReplayGuard(db), http
    )
    with pytest.raises(AuthenticationError, match="cannot be read"):
        verifier.verify("Bearer " + ehr.token(AUD), [AUD])


@pytest.mark.parametrize(
    "config",
    [
        {"iss": "x"},
        {"iss": "x", "jwks_url": "https://a/jwks", "jwks_file": "/tmp/jwks.json"},
        {"iss": "x", "jwks_url": "http://ehr.example.org/jwks"},
        {"iss": "", "jwks_file": "/tmp/jwks.json"},
        {"iss": "x", "jwks_file": "/tmp/j.json", "colour": "blue"},
    ],
)
def test_jwt_auth_issuer_config_is_checked(config: dict[str, Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        CdsIssuer.model_validate(config)


# Read at import: the suite's autouse fixture removes CODESUGGEST_* variables from each test.
POSTGRES_URL = os.environ.get("CODESUGGEST_TEST_POSTGRES_URL", "")


@pytest.mark.skipif(not POSTGRES_URL, reason="CODESUGGEST_TEST_POSTGRES_URL is not set")
def test_jwt_auth_replay_guard_on_postgresql() -> None:
    db = Database(POSTGRES_URL)
    db.upgrade()
    guard = ReplayGuard(db)
    try:
        expires = time.time() + 60
        assert guard.first_use("https://ehr.test.invalid", "jti-pg", expires)
        assert not guard.first_use("https://ehr.test.invalid", "jti-pg", expires)
        assert guard.first_use("https://other.test.invalid", "jti-pg", expires)
        assert guard.first_use("https://ehr.test.invalid", "jti-old", time.time() - 1)
        assert guard.purge_expired() == 1
    finally:
        db.downgrade("base")
        db.dispose()
