"""Signing in to the workbench with an API key, sessions, roles and CSRF protection.

A coder signs in once with their API key (``codesuggest keys create --role coder``, named after
the person: the name is who the feedback says acted). The key is checked like any API call; an
``integration`` key is refused, since systems do not review codes. A session is then kept in the
database (the sha256 of a random cookie token, never the token) for ``CODESUGGEST_UI_SESSION_HOURS``;
revoking the key ends its sessions at once, since every request checks the key again.

The cookie is ``HttpOnly`` and ``SameSite=Strict`` (and ``Secure`` over HTTPS). Every form that
changes something carries the session's CSRF token (a hidden field, or the ``X-CSRF-Token``
header for scripted requests), compared in constant time; the sign-in form itself uses a
double-submit cookie, so that another site cannot sign a browser in with its own key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request, Response
from sqlalchemy import delete, select

from service.config import Settings
from service.db import Database
from service.deps import get_db, get_settings
from service.errors import AuthenticationError, PermissionDeniedError
from service.models import ApiKey, UISession, utcnow
from service.review import Actor
from service.security import INSECURE_DEV_KEY_ID, authenticate
from service.ui.render import SignInRequired, UIRoute, redirect, render

logger = logging.getLogger(__name__)

SESSION_COOKIE = "cs_session"
LOGIN_COOKIE = "cs_signin"
COOKIE_PATH = "/ui"
UI_ROLES = frozenset({"coder", "admin"})

router = APIRouter(prefix="/ui", route_class=UIRoute, include_in_schema=False)


@dataclass(frozen=True, slots=True)
class UIUser:
    """The signed-in person.

    Attributes:
        name: the API key's name (who the events and feedback name).
        key_id: the API key's id.
        role: ``coder`` or ``admin``.
        csrf_token: the session's token that every form must send back.
    """

    name: str
    key_id: str
    role: str
    csrf_token: str

    @property
    def actor(self) -> Actor:
        """The user as the review functions record them."""
        return Actor(self.name, self.key_id, self.role)

    @property
    def is_admin(self) -> bool:
        """True for the admin role."""
        return self.role == "admin"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _secure_cookie(request: Request) -> bool:
    return request.url.scheme == "https"


def current_user(
    request: Request,
    db: Annotated[Database, Depends(get_db)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> UIUser:
    """The signed-in user of a workbench request.

    Args:
        request: the request (its session cookie).
        db: the service database.
        settings: deployment settings.

    Returns:
        The user (also kept on ``request.state.ui_user`` for the templates).

    Raises:
        SignInRequired: no session, an expired one, or its key was revoked.
    """
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired
    now = utcnow()
    with db.session() as session:
        row = session.get(UISession, _digest(token))
        if row is None or row.expires_at <= now:
            raise SignInRequired
        if row.key_id != INSECURE_DEV_KEY_ID or not settings.insecure_dev:
            key = session.get(ApiKey, row.key_id)
            if key is None or key.revoked_at is not None or key.role not in UI_ROLES:
                session.delete(row)
                raise SignInRequired
        user = UIUser(row.user, row.key_id, row.role, row.csrf_token)
    request.state.ui_user = user
    request.state.info.key_id = user.key_id
    return user


def require_admin(user: Annotated[UIUser, Depends(current_user)]) -> UIUser:
    """Let only admins through.

    Raises:
        PermissionDeniedError: a coder.
    """
    if not user.is_admin:
        raise PermissionDeniedError("only an admin may open this page")
    return user


async def check_csrf(request: Request, user: Annotated[UIUser, Depends(current_user)]) -> UIUser:
    """Refuse a state-changing request without the session's CSRF token.

    The token comes in the ``csrf_token`` form field or the ``X-CSRF-Token`` header. A request
    whose ``Origin`` names another site is refused as well.

    Args:
        request: the request.
        user: the signed-in user.

    Returns:
        The user.

    Raises:
        PermissionDeniedError: a missing or wrong token, or a foreign origin.
    """
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.url.netloc:
        raise PermissionDeniedError("the form came from another site")
    sent = request.headers.get("x-csrf-token")
    if not sent:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, user.csrf_token):
        raise PermissionDeniedError("the form has expired or did not come from the workbench: reload the page")
    return user


User = Annotated[UIUser, Depends(current_user)]
Admin = Annotated[UIUser, Depends(require_admin)]
FormUser = Annotated[UIUser, Depends(check_csrf)]


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/worklist"


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form (with a fresh double-submit token)."""
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", {"login_token": token, "next": _safe_next(next), "error": None})
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure_cookie(request),
    )
    return response


@router.post("/login")
def login(
    request: Request,
    db: Annotated[Database, Depends(get_db)],
    settings: Annotated[Settings, Depends(get_settings)],
    api_key: Annotated[str, Form(max_length=200)] = "",
    login_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the key, refuse integration keys, start a session."""
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    target = _safe_next(next)

    def again(message: str, status: int) -> Response:
        token = secrets.token_urlsafe(24)
        page = render(request, "login.html", {"login_token": token, "next": target, "error": message}, status)
        page.set_cookie(LOGIN_COOKIE, token, max_age=3600, path=COOKIE_PATH, httponly=True, samesite="strict")
        return page

    if not cookie or not login_token or not hmac.compare_digest(cookie, login_token):
        return again("The sign-in form expired; try again.", 403)
    with db.session() as session:
        if settings.insecure_dev:
            key_id, name, role = INSECURE_DEV_KEY_ID, "insecure-dev", "admin"
        else:
            try:
                principal = authenticate(session, api_key.strip())
            except AuthenticationError as exc:
                logger.info("workbench sign-in refused: %s", type(exc).__name__)
                return again(f"Sign-in refused: {exc}.", 401)
            key_id, name, role = principal.key_id, principal.name, principal.role
        if role not in UI_ROLES:
            logger.info("workbench sign-in refused for key %s: role %s", key_id, role)
            return again(
                f"An {role} key cannot open the workbench: it is for systems. Sign in with a coder or admin key.",
                403,
            )
        now = utcnow()
        session.execute(delete(UISession).where(UISession.expires_at <= now))
        token = secrets.token_urlsafe(32)
        session.add(
            UISession(
                id=_digest(token),
                key_id=key_id,
                user=name,
                role=role,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + dt.timedelta(hours=settings.ui_session_hours),
            )
        )
    logger.info("workbench sign-in: key %s (%s)", key_id, role)
    response = redirect(target)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.ui_session_hours * 3600),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure_cookie(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
def logout(request: Request, user: FormUser, db: Annotated[Database, Depends(get_db)]) -> Response:
    """End the session."""
    token = request.cookies.get(SESSION_COOKIE, "")
    with db.session() as session:
        session.execute(delete(UISession).where(UISession.id == _digest(token)))
    response = redirect("/ui/login")
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


def ui_users(db: Database) -> list[str]:
    """Names of the active coder and admin keys (the people an audit can be given to)."""
    with db.session() as session:
        names = session.scalars(
            select(ApiKey.name).where(ApiKey.revoked_at.is_(None), ApiKey.role.in_(sorted(UI_ROLES))).distinct()
        )
        return sorted(names)
