"""The Swagger UI pages of both API versions, served with no CDN.

FastAPI's own docs page loads Swagger UI from a CDN: on a network without that CDN (an air-gapped
deployment, this project's CI) the page stays blank, and the CSP has to trust a third-party host.
The bundle ships instead in the ``fastapi-offline`` wheel (pinned, so its version is reviewed like
any dependency); we use only its static files, because its ``FastAPIOffline`` factory builds one
docs page per app while we serve one per API version under our own CSP.

Every URL in the page is relative to the page (``openapi.json`` next to ``/api/v2/docs``), so the
page is the same bytes under any ``root_path``: the CSP allows its one inline script by hash."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse

V2_DOCS_PATH = "/api/v2/docs"
DOCS_PAGE_PATHS = (V2_DOCS_PATH, "/api/v1/docs", "/api/docs")
"""Every path that serves a docs page: both versions and the unversioned one (negotiated)."""
DOCS_ASSETS_PATH = "/api-docs/static"
"""Where the Swagger UI bundle is mounted (outside ``/api`` so no version negotiation applies)."""
DOCS_ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))


def swagger_page(*, title: str) -> HTMLResponse:
    """The docs page of the version whose ``/api/vN/docs`` serves it: the document is the
    sibling ``openapi.json``, the assets are two levels up, both relative."""
    assets = "../.." + DOCS_ASSETS_PATH
    return get_swagger_ui_html(
        openapi_url="openapi.json",
        title=title,
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon.png",
    )
