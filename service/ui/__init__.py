"""The coder's workbench: a web application at ``/ui/`` of the same service, and ``/docs`` and
``/redoc`` that work offline.

Server-rendered Jinja2 templates with htmx (vendored) for partial page updates: every screen is
plain HTML that works with forms and links alone, htmx swaps the part of the page that changed,
and one small script (``static/app.js``) adds evidence highlighting and keyboard shortcuts.
docs/workbench.md says why this approach and how to use it.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service.ui import auth, docs, pages
from service.ui.render import STATIC_DIR, STATIC_URL


def install(app: FastAPI) -> None:
    """Add the workbench, its static files and the offline API pages to an app.

    Args:
        app: the application, created with ``docs_url=None, redoc_url=None``.
    """
    app.include_router(auth.router)
    app.include_router(pages.router)
    app.include_router(docs.router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="ui-static")
