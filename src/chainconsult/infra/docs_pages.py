"""The Swagger UI pages of both API versions, served with no CDN.

FastAPI's own docs page loads Swagger UI from a CDN: on a network without that CDN (an air-gapped
deployment, this project's CI) the page stays blank, and the CSP has to trust a third-party host.
The bundle ships instead in the ``fastapi-offline`` wheel (pinned, so its version is reviewed like
any dependency); we use only its static files, because its ``FastAPIOffline`` factory builds one
docs page per app while we serve one per API version under our own CSP.

The page is ours, not FastAPI's ``get_swagger_ui_html``, because its one inline script must
hold a function (the request interceptor that sends the CSRF header for cookie sessions),
which FastAPI's JSON-serialised parameters cannot. The document's URL in that script is
relative (``openapi.json`` next to ``/api/v2/docs``), so the script is the same bytes on every
docs page and under any ``root_path``, and the CSP allows it by one hash."""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path

from starlette.responses import HTMLResponse

from chainconsult.infra.security.csrf import CSRF_COOKIE, CSRF_HEADER

V2_DOCS_PATH = "/api/v2/docs"
DOCS_PAGE_PATHS = (V2_DOCS_PATH, "/api/v1/docs", "/api/docs")
"""Every path that serves a docs page: both versions and the unversioned one (negotiated)."""
DOCS_ASSETS_PATH = "/api-docs/static"
"""Where the Swagger UI bundle is mounted (outside ``/api`` so no version negotiation applies)."""
DOCS_ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))

# Swagger UI's settings as FastAPI's own page has them, plus a request interceptor: once the
# page has logged in, the session cookie goes with every request, and a write must also echo
# the CSRF cookie in a header (accounts/auth.py), which Swagger UI cannot know by itself.
_START_SCRIPT = f"""
const ui = SwaggerUIBundle({{
    url: 'openapi.json',
    dom_id: '#swagger-ui',
    layout: 'BaseLayout',
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    requestInterceptor: (request) => {{
        const method = (request.method || 'GET').toUpperCase();
        const cookie = document.cookie.split('; ').find((c) => c.startsWith('{CSRF_COOKIE}='));
        if (cookie && !['GET', 'HEAD', 'OPTIONS'].includes(method)) {{
            request.headers['{CSRF_HEADER}'] = decodeURIComponent(cookie.split('=')[1]);
        }}
        return request;
    }},
}});
"""


def swagger_page(*, title: str, root_path: str = "") -> HTMLResponse:
    """The docs page of the version whose ``/api/vN/docs`` (or the negotiated ``/api/docs``)
    serves it: the document is the sibling ``openapi.json``, relative, so the one inline
    script is the same bytes on every page; the assets are absolute below ``root_path``
    (they are in tags, not in the script, so the CSP hash does not depend on them)."""
    assets = html.escape(root_path + DOCS_ASSETS_PATH)
    return HTMLResponse(f"""<!DOCTYPE html>
<html>
<head>
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link type="text/css" rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="shortcut icon" href="{assets}/favicon.png">
<title>{html.escape(title)}</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>{_START_SCRIPT}</script>
</body>
</html>
""")
