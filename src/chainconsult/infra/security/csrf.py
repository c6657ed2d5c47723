"""The request-origin half of CSRF defence, for cookie-authenticated unsafe requests (the
signed double-submit token is the other half, checked in accounts/auth.py).

Browsers set ``Sec-Fetch-Site`` and ``Origin`` themselves and pages cannot forge them, so a
request the browser marks cross-site is refused unless its origin is one of ALLOWED_ORIGINS.
A request with neither header does not come from a browser (curl, a server) and so cannot be
a forgery riding on a victim's cookie; the token is still required of it."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

CSRF_COOKIE = "csrf_token"
"""Set by login beside the session cookie, readable by the page's script."""
CSRF_HEADER = "X-CSRF-Token"
"""Where a cookie-authenticated unsafe request echoes the CSRF cookie's value."""


def request_origin_allowed(
    headers: Mapping[str, str], *, allowed_origins: Collection[str], host: str | None
) -> bool:
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site in {"same-origin", "none"}:
        # "none": the user started it (address bar, bookmark), no page did.
        return True
    origin = headers.get("origin")
    if origin is None or origin == "null":
        # No Origin on an unsafe request: a browser would have sent one, unless it is one
        # too old to send Sec-Fetch-Site either.
        return fetch_site is None
    if origin in allowed_origins:
        return True
    # Browsers without Fetch Metadata: the page's origin must be this very host. Compared by
    # host and port only, since TLS often ends at a proxy in front of us.
    if fetch_site is not None or host is None:
        return False
    try:
        return urlsplit(origin).netloc == host
    except ValueError:  # not a URL at all ("http://[x"): no page of ours sent it
        return False
