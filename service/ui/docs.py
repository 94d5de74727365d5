"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) that work offline.

FastAPI's own pages load Swagger UI and ReDoc from a CDN and start them with an inline script, so
on a machine without internet (and under a Content-Security-Policy without inline scripts) they
stay blank. These pages load the same libraries from the copies vendored into the package
(``service/ui/static/vendor``, from the npm packages ``swagger-ui-dist`` and ``redoc``) and start
Swagger UI from a small script file.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from service.ui.render import SECURITY_HEADERS, environment

router = APIRouter(include_in_schema=False)

# Both libraries set element styles from script (CSSOM), which the CSP allows; ReDoc also adds
# <style> elements (styled-components), so its page allows inline styles, never inline scripts.
# ReDoc's search runs in a worker it builds from a blob: URL.
DOCS_CSP = SECURITY_HEADERS["Content-Security-Policy"]
REDOC_CSP = DOCS_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'") + "; worker-src 'self' blob:"


def _page(request: Request, template: str, csp: str) -> Response:
    html = environment.get_template(template).render(
        title=request.app.title, openapi_url=request.app.openapi_url or "/openapi.json"
    )
    response = HTMLResponse(html)
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers["Content-Security-Policy"] = csp
    response.headers["Cache-Control"] = "no-cache"
    return response


@router.get("/docs")
def swagger_ui(request: Request) -> Response:
    """The interactive API documentation (Swagger UI, vendored)."""
    return _page(request, "swagger.html", DOCS_CSP)


@router.get("/redoc")
def redoc(request: Request) -> Response:
    """The API reference (ReDoc, vendored)."""
    return _page(request, "redoc.html", REDOC_CSP)
