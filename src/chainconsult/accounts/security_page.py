"""`/account/security`, whose parts come from two sets of handlers (lifecycle_pages: the
address, sessions and password; identity_pages: the second factor): rendered here, whole."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from chainconsult.accounts.mfa import MfaService, TotpSetup
from chainconsult.accounts.sessions import SessionService
from chainconsult.accounts.visit import PageVisit
from chainconsult.infra.resources import resources_of
from chainconsult.web.forms import FormState


async def two_factor_context(
    visit: PageVisit,
    *,
    setup: TotpSetup | None = None,
    recovery_codes: list[str] | None = None,
    form: FormState | None = None,
) -> dict[str, Any]:
    """What accounts/_two_factor.html shows, for whichever page includes it."""
    service = MfaService(visit.session, resources_of(visit.request).secret_key)
    account_id = visit.member.account_id
    return {
        "two_factor": {
            "enabled": await service.is_enabled(account_id),
            "codes_left": await service.recovery_codes_left(account_id),
            "setup": setup,
            "recovery_codes": recovery_codes,
            "form": form or FormState(),
        }
    }


async def render_security(
    visit: PageVisit,
    *,
    password_form: FormState | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    notice: str | None = None,
    two_factor: Mapping[str, Any] | None = None,
) -> Response:
    """The page with its three parts: the address, the sessions and password, and the
    second factor (``two_factor``: what ``two_factor_context`` takes)."""
    return await visit.render(
        "accounts/security.html",
        status_code=status_code,
        headers=headers,
        account=visit.member,
        sessions=await SessionService(visit.session).of(visit.member),
        password_form=password_form or FormState(),
        notice=notice,
        **await two_factor_context(visit, **(two_factor or {})),
    )
