"""The Swagger UI pages of both API versions, served with no CDN.

FastAPI's own docs page loads Swagger UI from a CDN: on a network without that CDN (an air-gapped
deployment, this project's CI) the page stays blank, and the CSP has to trust a third-party host.
The bundle ships instead in the ``fastapi-offline`` wheel (pinned, so its version is reviewed like
any dependency); we use only its static files, because its ``FastAPIOffline`` factory builds one
docs page per app while we serve one per API version under our own CSP.

The document's URL in the page's one inline script is relative (``openapi.json`` next to
``/api/v2/docs``), so that script is the same bytes on every docs page and under any
``root_path``, and the CSP allows it by one hash."""

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


def swagger_page(*, title: str, root_path: str = "") -> HTMLResponse:
    """The docs page of the version whose ``/api/vN/docs`` (or the negotiated ``/api/docs``)
    serves it: the document is the sibling ``openapi.json``, relative, so the one inline
    script is the same bytes on every page; the assets are absolute below ``root_path``
    (they are in tags, not in the script, so the CSP hash does not depend on them)."""
    assets = root_path + DOCS_ASSETS_PATH
    return get_swagger_ui_html(
        openapi_url="openapi.json",
        title=title,
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon.png",
    )
