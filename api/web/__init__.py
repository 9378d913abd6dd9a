"""The web front door: the page at `/` and offline API docs at `/docs` and `/redoc`.

Nothing here is part of the API contract: every route and mount stays out of /openapi.json.
The page is plain files in `static/` (no build step, no CDN); the Swagger UI and ReDoc assets
come from the installed `fastapi-offline` package, served from its own directory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
PAGE_PREFIX, DOCS_PREFIX = "/web", "/docs-assets"

# The page loads only its own files and talks only to this origin; images come back as blobs.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
            "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

# The docs pages talk to nobody but this origin either: ReDoc's sidebar would load a logo from
# cdn.redoc.ly, a CSP-blocked request never leaves the browser. Both pages need inline styles
# (and Swagger UI its inline start-up script); ReDoc's search runs in a blob: worker.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
            "base-uri 'none'; frame-ancestors 'none'")
DOCS_HEADERS = {"Content-Security-Policy": DOCS_CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer"}

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    """The page for people: upload, watch the progress and preview, download the result."""
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)


def _docs_page(request: Request, render: Callable[..., HTMLResponse], name: str,
               extra: dict[str, Any], **assets: str) -> HTMLResponse:
    """A docs page (Swagger UI or ReDoc) with the app's spec and local assets, behind the docs CSP."""
    root = request.scope.get("root_path", "")
    urls = {key: f"{root}{DOCS_PREFIX}/{file}" for key, file in assets.items()}
    page = render(openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} - {name}",
                  **urls, **extra)
    page.headers.update(DOCS_HEADERS)
    return page


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI from local assets."""
    return _docs_page(request, get_swagger_ui_html, "Swagger UI",
                      swagger_js_url="swagger-ui-bundle.js", swagger_css_url="swagger-ui.css",
                      swagger_favicon_url="favicon.png",
                      extra={"swagger_ui_parameters": {"validatorUrl": None}})  # no validator badge


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """ReDoc from local assets, without Google Fonts."""
    return _docs_page(request, get_redoc_html, "ReDoc", redoc_js_url="redoc.standalone.js",
                      redoc_favicon_url="favicon.png", extra={"with_google_fonts": False})


class _PageHeaders:
    """Add the page's security headers to every static response of the page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *(
                    (k.lower().encode(), v.encode()) for k, v in PAGE_HEADERS.items()
                    if k != "Cache-Control")]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_web(app: FastAPI) -> None:
    """Mount the page, its files and the offline docs (create the app with docs_url=None)."""
    app.include_router(router)
    app.mount(PAGE_PREFIX, _PageHeaders(StaticFiles(directory=STATIC)), name="web")
    app.mount(DOCS_PREFIX, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
