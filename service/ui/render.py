"""Server-rendered pages: the Jinja2 environment, security headers, and errors as pages.

Every workbench page is rendered here from ``service/ui/templates`` with autoescaping on (a note
is untrusted text). Every answer of the workbench and of the offline API pages carries a
Content-Security-Policy that allows only this origin: no external source, no inline script, no
``eval``; the pages load their scripts from ``/ui/static``. Pages that show note text are never
cached (``Cache-Control: no-store``).

:class:`UIRoute` is the route class of the workbench's routers: an error raised by a route or a
dependency becomes an HTML page with the right status instead of the API's JSON body, and a
request without a session is sent to the sign-in page.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.errors import CodesuggestError
from service.errors import error_type, validation_fields

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_URL = "/ui/static"

# Only this origin: no CDN, no inline script (htmx runs with allowEval off), no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """No valid workbench session: the browser is sent to the sign-in page."""


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value is None else str(value)


def _age_days(value: Any) -> int | str:
    if isinstance(value, dt.date):
        return (dt.datetime.now(dt.UTC).date() - value).days
    return ""


environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"], default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters["when"] = _date
environment.filters["age_days"] = _age_days
environment.globals["static"] = lambda path: f"{STATIC_URL}/{path}"


def secure(response: Response) -> Response:
    """Add the workbench's security headers to an answer.

    Args:
        response: the answer.

    Returns:
        The same answer.
    """
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """Render a page.

    Args:
        request: the request (its session, if any, is on ``request.state.ui_user``).
        template: the template file name.
        context: the template's variables.
        status_code: the HTTP status.

    Returns:
        The HTML answer with the security headers.
    """
    user = getattr(request.state, "ui_user", None)
    values = {"request": request, "user": user, "csrf_token": user.csrf_token if user else "", **context}
    response = HTMLResponse(environment.get_template(template).render(values), status_code=status_code)
    if request.headers.get("HX-Request") == "true":
        # htmx would put a form's POST address in the history (reloading it would fail): the
        # address to keep is the page's own, and a refused form keeps the page it came from.
        push = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response.headers["HX-Push-Url"] = push if request.method == "GET" else "false"
    secure(response)
    return response


def redirect(url: str, request: Request | None = None) -> Response:
    """Send the browser to another page after a form (303), or tell htmx to go there.

    Args:
        url: where to.
        request: the request (an htmx request gets ``HX-Redirect`` instead of a 303).

    Returns:
        The answer.
    """
    if request is not None and request.headers.get("HX-Request") == "true" and not request.headers.get("HX-Boosted"):
        return secure(Response(status_code=204, headers={"HX-Redirect": url}))
    return secure(RedirectResponse(url, status_code=303))


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    """An error as a page (the same shape in every part of the workbench).

    Args:
        request: the request.
        status: HTTP status.
        title: a short heading.
        message: what was wrong, for a person.

    Returns:
        The page.
    """
    return render(request, "error.html", {"title": title, "message": message, "status": status}, status)


_TITLES = {400: "Bad request", 401: "Sign in", 403: "Not allowed", 404: "Not found", 409: "Conflict", 410: "Gone"}


class UIRoute(APIRoute):
    """A route whose errors are pages, and whose answers carry the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler (dependencies included) with the workbench's error pages."""
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return secure(await handler(request))
            except SignInRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return redirect(f"/ui/login?next={quote(target, safe='')}", request)
            except CodesuggestError as exc:
                status = int(getattr(exc, "http_status", 400))
                logger.info("ui request %s failed: %s (%d)", _request_id(request), type(exc).__name__, status)
                title = _TITLES.get(status, "Error" if status >= 500 else "Cannot do that")
                page = error_page(request, status, title, str(exc))
                page.headers["X-Error-Type"] = error_type(exc)
                return page
            except RequestValidationError as exc:
                fields = validation_fields(exc.errors())
                message = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5]) or "invalid form"
                return error_page(request, 422, "Check the form", message)
            except StarletteHTTPException as exc:
                detail = exc.detail if isinstance(exc.detail, str) else ""
                return error_page(request, exc.status_code, _TITLES.get(exc.status_code, "Error"), detail)

        return route


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)
