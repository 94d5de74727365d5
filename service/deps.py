"""FastAPI dependencies: the loaded parts of the app, the caller, and role checks.

Everything the routes need is created once in ``lifespan`` (:mod:`service.main`) and kept on
``app.state``; these functions hand it to the routes as ``Annotated`` dependencies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.audit import RequestInfo
from service.config import Settings
from service.db import Database
from service.errors import PermissionDeniedError
from service.idempotency import IdempotencyStore
from service.jobs import JobManager
from service.security import INSECURE_DEV_KEY_ID, ROLE_MATRIX, Principal, authenticate
from service.suggesting import SuggesterLike

logger = logging.getLogger(__name__)

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key: csk_<id>_<secret>")
bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")


def get_info(request: Request) -> RequestInfo:
    """The request's log/audit info, created by the request middleware.

    Args:
        request: the current request.

    Returns:
        The RequestInfo kept on ``request.state``.
    """
    info: RequestInfo = request.state.info
    return info


def _from_app_state(attribute: str) -> Callable[[Request], Any]:
    """A dependency that hands out ``app.state.<attribute>``, created once in ``lifespan``.

    Args:
        attribute: the name on ``app.state``.

    Returns:
        The dependency function (one per attribute, so routes and tests can override it).
    """

    def dependency(request: Request) -> Any:
        return getattr(request.app.state, attribute)

    dependency.__name__ = f"get_{attribute}"
    dependency.__doc__ = f"What ``lifespan`` keeps on ``app.state.{attribute}``."
    return dependency


get_settings: Callable[[Request], Settings] = _from_app_state("settings")
get_suggester: Callable[[Request], SuggesterLike] = _from_app_state("suggester")
get_db: Callable[[Request], Database] = _from_app_state("db")
get_jobs: Callable[[Request], JobManager] = _from_app_state("jobs")
get_idempotency: Callable[[Request], IdempotencyStore] = _from_app_state("idempotency")


def get_principal(
    settings: Annotated[Settings, Depends(get_settings)],
    db: Annotated[Database, Depends(get_db)],
    info: Annotated[RequestInfo, Depends(get_info)],
    api_key: Annotated[str | None, Security(api_key_header)] = None,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
) -> Principal:
    """Authenticate the caller from ``X-API-Key`` or ``Authorization: Bearer``.

    Args:
        settings: deployment settings (``insecure_dev`` turns authentication off).
        db: the database holding the keys.
        info: the request's audit info, given the key id.
        api_key: the ``X-API-Key`` header.
        credentials: the bearer token.

    Returns:
        The caller.

    Raises:
        AuthenticationError: no key, or an invalid or revoked one (401).
    """
    if settings.insecure_dev:
        principal = Principal(key_id=INSECURE_DEV_KEY_ID, role="admin", name="insecure-dev")
    else:
        token = api_key or (credentials.credentials if credentials else None)
        with db.session() as session:
            principal = authenticate(session, token)
    info.key_id = principal.key_id
    return principal


def require(group: str) -> Callable[[Principal], Principal]:
    """Build a dependency that lets only the roles of ``ROLE_MATRIX[group]`` through.

    Args:
        group: a key of :data:`service.security.ROLE_MATRIX`.

    Returns:
        The dependency; it raises :class:`~service.errors.PermissionDeniedError` (403).
    """
    allowed = ROLE_MATRIX[group]

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in allowed:
            raise PermissionDeniedError(
                f"role {principal.role!r} may not call this endpoint (allowed: {', '.join(sorted(allowed))})"
            )
        return principal

    check.__name__ = f"require_{group}"
    return check


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retrying with the same key and body returns the stored answer; the same "
        "key with another body: 422. Scoped to the API key; expires after "
        "CODESUGGEST_IDEMPOTENCY_TTL_SECONDS.",
    ),
]


# One alias per dependency: routes declare ``info: InfoDep`` rather than repeating ``Depends``.
InfoDep = Annotated[RequestInfo, Depends(get_info)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SuggesterDep = Annotated[SuggesterLike, Depends(get_suggester)]
DatabaseDep = Annotated[Database, Depends(get_db)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]
IdempotencyDep = Annotated[IdempotencyStore, Depends(get_idempotency)]
# The caller, let through only with a role of ROLE_MATRIX[group] (403 otherwise).
ReadCaller = Annotated[Principal, Depends(require("read"))]
SuggestCaller = Annotated[Principal, Depends(require("suggest"))]
BatchCaller = Annotated[Principal, Depends(require("batch"))]
JobsCaller = Annotated[Principal, Depends(require("jobs"))]
FeedbackCaller = Annotated[Principal, Depends(require("feedback"))]
