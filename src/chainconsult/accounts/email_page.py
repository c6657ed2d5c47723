"""`/account/emails`: which optional emails you get (chainconsult.mail.preferences), each one
on or off, in the same store as the emails' unsubscribe links, so a kind turned off by a link
shows off here and can be turned back on. Emails about the account itself always come."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import RedirectResponse, Response

from chainconsult.accounts.visit import MemberPosted, MemberVisit, PageVisit
from chainconsult.errors import ChainconsultError
from chainconsult.mail.preferences import OPTIONAL_EMAILS, EmailPreferences
from chainconsult.web.forms import FormState
from chainconsult.web.routing import page_router

router = page_router()

EMAILS_PATH = "/account/emails"
_FIELD = "receive"


async def _render(
    visit: PageVisit,
    *,
    form: FormState | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    if form is None:
        off = await EmailPreferences(visit.session).turned_off(visit.member.account_id)
        form = FormState(values={_FIELD: [e.kind for e in OPTIONAL_EMAILS if e.kind not in off]})
    return await visit.render(
        "accounts/emails.html",
        status_code=status_code,
        form=form,
        options=[(e.kind, f"{e.label}: when {e.sent_when}") for e in OPTIONAL_EMAILS],
        notice=notice,
    )


@router.get(EMAILS_PATH)
async def emails_page(
    visit: MemberVisit, notice: Annotated[str | None, Query(max_length=40)] = None
) -> Response:
    return await _render(visit, notice=notice)


@router.post(EMAILS_PATH)
async def choose_emails(posted: MemberPosted) -> Response:
    """The ticked kinds come (back) on, the others go off: the form is the whole choice."""
    visit = posted.visit
    form = FormState.posted(posted.form, lists=[_FIELD])
    try:
        await EmailPreferences(visit.session).choose(visit.member.account_id, form.chosen(_FIELD))
    except ChainconsultError as exc:
        await visit.undo()
        form.refuse_problem(exc.detail, exc.extensions.get("errors", ()))
        return await _render(visit, form=form, status_code=exc.status_code)
    return RedirectResponse(f"{EMAILS_PATH}?notice=saved", status_code=303)
