"""The middleware stack of the app, in one place so its order can be read and argued:
see ``install_middleware``. Wires infra (limits, headers, CORS, IP filter) to the accounts
domain (who the caller is), which is why it lives outside infra/."""

from __future__ import annotations

import re

from fastapi import FastAPI

from chainconsult.accounts.identity import identify
from chainconsult.accounts.login_shortcut import install_login_shortcut
from chainconsult.api_versions import install_api_versions
from chainconsult.config import Settings
from chainconsult.conversations.files import UPLOAD_OVERHEAD_BYTES, UPLOAD_PATHS
from chainconsult.infra.cache import CachedReadShortcut
from chainconsult.infra.docs_pages import DOCS_PAGE_PATHS, swagger_page
from chainconsult.infra.health.endpoints import PROBES
from chainconsult.infra.health.shortcut import ProbeShortcut
from chainconsult.infra.http import HeadAsGetMiddleware
from chainconsult.infra.monitoring.http_metrics import PROBE_ROUTES, HttpMetricsMiddleware
from chainconsult.infra.monitoring.request_context import (
    CrashBarrierMiddleware,
    RequestContextMiddleware,
    last_resort_problem,
)
from chainconsult.infra.ratelimit import (
    EndpointGroup,
    PolicySet,
    RateLimitMiddleware,
    RateLimitPolicy,
)
from chainconsult.infra.security.body import BodyDeadlineMiddleware, BodyGuardMiddleware
from chainconsult.infra.security.client_ip import ClientIPMiddleware
from chainconsult.infra.security.cors import ExactOriginCORSMiddleware
from chainconsult.infra.security.headers import (
    SecurityHeadersMiddleware,
    api_headers,
    docs_headers,
    page_headers,
)
from chainconsult.infra.tracing import TracingMiddleware, active
from chainconsult.web.problems import ProblemPages
from chainconsult.web.routing import page_prefixes


def rate_limit_policies(settings: Settings) -> PolicySet:
    limits = settings.rate_limits
    return PolicySet(
        anonymous=RateLimitPolicy.parse("anonymous", limits.anonymous),
        tiers={
            "free": RateLimitPolicy.parse("free", limits.free),
            "pro": RateLimitPolicy.parse("pro", limits.pro),
            "enterprise": RateLimitPolicy.parse("enterprise", limits.enterprise),
        },
        # Login, registration and the mailed-link flows also count per client IP, on top of
        # the caller's own limit: one client cannot guess passwords, register accounts or
        # send reset emails quickly by switching logins.
        groups=(
            EndpointGroup(
                RateLimitPolicy.parse("auth", limits.auth),
                # The pages post to /login(/mfa), /register, /forgot-password, /reset-password.
                re.compile(
                    r"(/api(/v[0-9]+)?/auth)?/(login(/mfa)?|register|password-reset(/confirm)?"
                    r"|verify-email(/resend)?)|/(forgot|reset)-password"
                ),
            ),
        ),
        write_cost=limits.write_cost,
    )


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """The middleware stack. A request meets them in this order (each answers before the
    next one runs, when it answers at all):

    0. HttpMetrics: counts every request by route template and final status.
       (Tracing, when OTEL_* turns it on: the request's server span, around everything below.)
    1. RequestContext: X-Request-ID and the access log line, for every answer below (a
       blocked address's 403 included: every error names its request id).
    2. SecurityHeaders: outside every answer below, so a 403, 429 or 500 carries them too, and
       the platform's Server header rather than the server software's.
    3. CrashBarrier (edge): a crash in any layer from 4 to 11 still answers a 500 problem
       through 0 to 2. (A crash in 0 to 2 themselves meets ``last_resort_problem``.)
    4. ClientIP: the real client IP (X-Forwarded-For only via TRUSTED_PROXIES); BLOCKED_IPS get
       403 here, before any lookup is spent on them.
    5. CORS: answers preflights itself, and is outside the rate limit so that a 429 reaches
       the page's script readably instead of as an opaque network error.
    6. HeadAsGet: a HEAD goes on as a GET (on a copy of the scope) and leaves without its body.
    7. BodyDeadline: the whole request body within HTTP_BODY_TIMEOUT of its first read, else
       408; outside the versioning layer, which reads v1 bodies itself.
    8. ApiVersion: /api/v1 rewritten onto v2 (and its answers converted back), the unversioned
       /api/... routed by header; everything inside sees v2 paths only, and every answer from
       inside (a 429, a 413) reaches a v1 caller in v1 form with the v1 headers.
    9. RateLimit: resolves the caller (token or cookie to account and plan) and counts it,
       before any body is read or any handler runs (on the lifespan's limiter: Resources).
    10. LoginBusyShortcut: a login while the process's login gate is full is answered 503
        login-busy here, as the gate would answer it, without reading its body (counted by
        the rate limit first; accounts/login_shortcut.py).
    11. BodyGuard: size, JSON type and nesting depth, before validation.
    12. CrashBarrier: so a handler's crash answers a 500 problem through 1 to 11 (CORS, v1
        form, rate-limit headers).
    13. CachedReadShortcut: inside every policy above: answers a repeat public cached GET
        (the expert directory and profiles) from L1 without routing.
    14. ProbeShortcut: innermost: answers GET of the health probes with the routes' own
        functions, without routing.
    """
    security = settings.security
    production = settings.app.is_production
    # Every docs page has the same inline script (its URLs are relative), so one header set.
    docs = docs_headers(
        production=production, docs_html=bytes(swagger_page(title="").body).decode()
    )
    pages = page_headers(production=production)
    by_path = [("/status", pages)]
    by_path += [(prefix, pages) for prefix in page_prefixes(app.routes)]
    by_path += [(path, docs) for path in DOCS_PAGE_PATHS]
    # add_middleware wraps what is there: added innermost first.
    app.add_middleware(ProbeShortcut, probes=PROBES)
    app.add_middleware(CachedReadShortcut)
    app.add_middleware(CrashBarrierMiddleware)
    app.add_middleware(
        BodyGuardMiddleware,
        max_body_bytes=security.max_body_bytes,
        max_json_depth=security.max_json_depth,
        uploads=UPLOAD_PATHS,
        max_upload_body_bytes=settings.storage.max_upload_bytes + UPLOAD_OVERHEAD_BYTES,
    )
    install_login_shortcut(app, settings.login_throttle.hash_wait_ms / 1000)
    app.add_middleware(
        RateLimitMiddleware,
        policies=rate_limit_policies(settings),
        identify=identify,
        probe_paths=PROBE_ROUTES - {"/metrics"},
    )
    install_api_versions(app, settings)
    app.add_middleware(BodyDeadlineMiddleware, timeout_seconds=security.body_timeout_seconds)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(
        ExactOriginCORSMiddleware,
        allowed_origins=security.allowed_origins,
        max_age=security.cors_max_age_seconds,
    )
    app.add_middleware(
        ClientIPMiddleware,
        blocked_ips=security.blocked_ips,
        trusted_ips=security.trusted_ips,
        trusted_proxies=security.trusted_proxies,
    )
    app.add_middleware(ProblemPages)
    app.add_middleware(CrashBarrierMiddleware)
    app.add_middleware(
        SecurityHeadersMiddleware, default=api_headers(production=production), by_path=by_path
    )
    app.add_middleware(RequestContextMiddleware)
    # Only when OTEL_* turned tracing on: off, the stack is exactly as without it.
    if (tracing := active()) is not None:
        app.add_middleware(TracingMiddleware, recorder=tracing.recorder)
    # Outermost: counts every request with its final status, whatever answered it (a blocked
    # IP's 403 included).
    app.add_middleware(HttpMetricsMiddleware)
    # Starlette's own outermost layer answers a crash of the three above with a text/plain
    # page; this handler makes that a problem too.
    app.add_exception_handler(Exception, last_resort_problem)
