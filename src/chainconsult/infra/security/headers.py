"""Security headers on every response, built with the `secure` library and tuned per kind of
page: the JSON API gets a CSP that allows nothing at all; HTML pages (the admin status page,
the API docs) get a CSP that lets exactly their own scripts and styles run.

`secure`'s own ASGI middleware applies one header set to every path and serialises it per
response; this one picks a set by path prefix and encodes each set once at start-up."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence

from secure import (
    ContentSecurityPolicy,
    CrossOriginOpenerPolicy,
    CrossOriginResourcePolicy,
    PermissionsPolicy,
    ReferrerPolicy,
    Secure,
    StrictTransportSecurity,
    XContentTypeOptions,
    XFrameOptions,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HeaderList = list[tuple[bytes, bytes]]

_HSTS_SECONDS = 63_072_000  # two years, the preload list's requirement
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _permissions() -> PermissionsPolicy:
    # Nothing here uses a device or a sensor: say so, so an injected frame cannot either.
    return (
        PermissionsPolicy()
        .accelerometer()
        .camera()
        .geolocation()
        .gyroscope()
        .magnetometer()
        .microphone()
        .payment()
        .usb()
    )


def _common(*, production: bool, csp: ContentSecurityPolicy, referrer: ReferrerPolicy) -> Secure:
    return Secure(
        csp=csp,
        # Browsers ignore HSTS over plain HTTP; in development it would only pin localhost.
        hsts=StrictTransportSecurity().max_age(_HSTS_SECONDS).include_subdomains()
        if production
        else None,
        xcto=XContentTypeOptions().nosniff(),
        xfo=XFrameOptions().deny(),
        referrer=referrer,
        coop=CrossOriginOpenerPolicy().same_origin(),
        corp=CrossOriginResourcePolicy().same_origin(),
        permissions=_permissions(),
    )


def api_headers(*, production: bool) -> Secure:
    """JSON responses: a browser that renders one by mistake may load and run nothing."""
    csp = (
        ContentSecurityPolicy()
        .default_src("'none'")
        .frame_ancestors("'none'")
        .base_uri("'none'")
        .form_action("'none'")
    )
    return _common(production=production, csp=csp, referrer=ReferrerPolicy().no_referrer())


def page_headers(*, production: bool, script_hashes: Sequence[str] = ()) -> Secure:
    """HTML pages served by the app itself (the /status dashboard): their own scripts,
    styles, images and fetches to the API, nothing from elsewhere, no framing."""
    csp = (
        ContentSecurityPolicy()
        .default_src("'self'")
        .script_src("'self'", *script_hashes)
        .style_src("'self'")
        .img_src("'self'", "data:")
        .connect_src("'self'")
        .object_src("'none'")
        .frame_ancestors("'none'")
        .base_uri("'none'")
        .form_action("'self'")
    )
    return _common(
        production=production, csp=csp, referrer=ReferrerPolicy().strict_origin_when_cross_origin()
    )


def docs_headers(*, production: bool, docs_html: str) -> Secure:
    """Swagger UI: its bundle from this origin and its one inline start-up script, allowed by
    hash (computed from the page as rendered, so a FastAPI upgrade cannot silently break
    it) rather than by 'unsafe-inline'."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(docs_html)
    ]
    csp = (
        ContentSecurityPolicy()
        .default_src("'none'")
        .script_src("'self'", *hashes)
        .style_src("'self'")
        .img_src("'self'", "data:")
        .connect_src("'self'")
        .frame_ancestors("'none'")
        .base_uri("'none'")
        .form_action("'none'")
    )
    return _common(production=production, csp=csp, referrer=ReferrerPolicy().no_referrer())


def _encode(secure: Secure) -> HeaderList:
    return [
        (name.lower().encode(), value.encode("latin-1")) for name, value in secure.headers.items()
    ]


SERVER_HEADER = (b"server", b"chainconsult")


def _first_segment(path: str) -> str:
    return path.partition("/")[2].partition("/")[0]


class SecurityHeadersMiddleware:
    """Adds the header set of the first matching path prefix (else ``default``) to every
    response, replacing any same-named header an inner layer set, and ``Server: chainconsult``
    in place of any other: it names the service, never the server software or a version
    (granian names itself only in answers that carry no ``Server`` header)."""

    def __init__(
        self, app: ASGIApp, *, default: Secure, by_path: Sequence[tuple[str, Secure]] = ()
    ) -> None:
        self.app = app
        self.default = [*_encode(default), SERVER_HEADER]
        # Grouped by first path segment: a request compares only the prefixes that share
        # its first segment (an API path meets the few docs paths, not every page prefix).
        self.by_segment: dict[str, list[tuple[str, HeaderList]]] = {}
        for prefix, secure in by_path:
            headers = [*_encode(secure), SERVER_HEADER]
            self.by_segment.setdefault(_first_segment(prefix), []).append((prefix, headers))

    def _for(self, path: str) -> HeaderList:
        for prefix, headers in self.by_segment.get(_first_segment(path), ()):
            if path == prefix or path.startswith(prefix + "/"):
                return headers
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ours = self._for(scope["path"])
        replaced = {name for name, _ in ours}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in replaced
                ]
                message["headers"] = kept + ours
            await send(message)

        await self.app(scope, receive, send_with_headers)
