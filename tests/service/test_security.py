"""API keys: creation, storage, authentication, revocation."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.errors import InputError
from service.db import Database
from service.errors import AuthenticationError, NotFoundError
from service.models import ApiKey
from service.security import (
    ROLE_MATRIX,
    ROLES,
    authenticate,
    create_key,
    hash_secret,
    list_keys,
    revoke_key,
)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'keys.sqlite3'}")
    database.upgrade()
    return database


@pytest.mark.parametrize("role", ROLES)
def test_security_key_round_trip(db: Database, role: str) -> None:
    with db.session() as session:
        info, token = create_key(session, f"  {role} key ", role)
    assert token.startswith(f"csk_{info.id}_")
    assert info.name == f"{role} key"
    with db.session() as session:
        principal = authenticate(session, token)
        row = session.scalars(select(ApiKey)).one()
    assert (principal.key_id, principal.role) == (info.id, role)
    secret = token.split("_")[2]
    assert row.secret_sha256 == hash_secret(info.id, secret)
    assert secret not in row.secret_sha256


def test_security_secret_is_not_stored_anywhere(db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        _, token = create_key(session, "ehr", "integration")
    db.dispose()
    secret = token.split("_")[2].encode()
    assert all(secret not in p.read_bytes() for p in tmp_path.glob("keys.sqlite3*"))


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "required"),
        ("", "required"),
        ("csk_short", "malformed"),
        ("Bearer csk_0", "malformed"),
        ("csk_aaaaaaaaaaaa_" + "0" * 64, "invalid"),
    ],
)
def test_security_bad_tokens_are_refused(db: Database, token: str | None, message: str) -> None:
    with db.session() as session, pytest.raises(AuthenticationError, match=message):
        authenticate(session, token)


def test_security_revoke_and_list(db: Database) -> None:
    with db.session() as session:
        first, token = create_key(session, "one", "coder")
        create_key(session, "two", "admin")
    with db.session() as session:
        revoked = revoke_key(session, first.id)
        again = revoke_key(session, first.id)
    assert revoked.revoked_at is not None and again.revoked_at == revoked.revoked_at
    with db.session() as session:
        assert [k.name for k in list_keys(session)] == ["one", "two"]
        assert [k.name for k in list_keys(session, include_revoked=False)] == ["two"]
        with pytest.raises(AuthenticationError, match="revoked"):
            authenticate(session, token)
        with pytest.raises(NotFoundError):
            revoke_key(session, "ffffffffffff")


@pytest.mark.parametrize(("name", "role"), [("x", "superuser"), ("   ", "coder"), ("x" * 201, "coder")])
def test_security_create_rejects_bad_role_or_name(db: Database, name: str, role: str) -> None:
    with db.session() as session, pytest.raises(InputError):
        create_key(session, name, role)


def test_security_role_matrix_is_consistent() -> None:
    assert all(group <= set(ROLES) for group in ROLE_MATRIX.values())
    assert all("admin" in group for group in ROLE_MATRIX.values())
    assert "integration" not in ROLE_MATRIX["feedback"]
    assert "coder" not in ROLE_MATRIX["batch"]
