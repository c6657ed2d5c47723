"""Every link in every email leads to a page: each template, in each of its variants, is
rendered, and each link in it is requested from the app as the reader's browser would, first
logged out (a page that needs a login sends them to /login and back), then logged in as an
approved expert, who is shown the page and the part of it a link's fragment names."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from httpx import AsyncClient

from chainconsult.app import create_app
from chainconsult.mail.rendering import RenderedEmail, templates
from chainconsult.notifications.email_contexts import EMAIL_CONTEXTS
from chainconsult.notifications.schemas import NotificationKind
from tests.conftest import make_settings
from tests.helpers import serving
from tests.mail.test_email_delivery import SAMPLE_CONTEXTS
from tests.market import admin, approved_expert, client_account, project_body

PUBLIC_URL = "https://chainconsult.example"
VARIANTS: dict[str, list[dict[str, Any]]] = {
    **{kind: [context] for kind, context in SAMPLE_CONTEXTS.items()},
    # Each branch of a template that has them.
    "welcome": [{"role": "expert_candidate"}, {"role": "client"}],
    "message_digest": [
        {"threads": [{"conversation_id": "", "project_title": "Audit a vault", "unread": 3}]}
    ],
    "password_reset": [{"token": "sample-token", "valid_minutes": 30, "valid_hours": 0}],
    "verify_email": [{"token": "sample-token", "valid_minutes": 1440, "valid_hours": 24}],
    "password_changed": [{"how": "reset"}, {"how": "changed"}],
    NotificationKind.application_decided: [
        {"decision": "approved", "note": "Strong Solidity portfolio."},
        {"decision": "rejected", "note": None},
    ],
    NotificationKind.proposal_declined: [
        {**SAMPLE_CONTEXTS[NotificationKind.proposal_declined], "reason": reason}
        for reason in ("another_accepted", "project_cancelled")
    ],
}


@pytest.fixture
async def app_client(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncClient]:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, PUBLIC_URL=PUBLIC_URL)
    async with serving(create_app(settings)) as http:
        yield http


def _render(
    kind: str, variant: dict[str, Any], project_id: str, conversation_id: str
) -> RenderedEmail:
    context = {**variant, "project_id": project_id} if "project_id" in variant else variant
    if "threads" in context:
        threads = [{**thread, "conversation_id": conversation_id} for thread in context["threads"]]
        context = {**context, "threads": threads}
    if kind in EMAIL_CONTEXTS:
        context = (
            EMAIL_CONTEXTS[NotificationKind(kind)].model_validate(context).model_dump(mode="json")
        )
    return templates.render(
        kind,
        {
            **context,
            "display_name": "Grace",
            "email": "grace@example.com",
            "public_url": PUBLIC_URL,
        },
    )


def _links(email: RenderedEmail) -> set[str]:
    in_text = set(re.findall(r"https?://\S+", email.text))
    in_html = {html.unescape(href) for href in re.findall(r'href="([^"]*)"', email.html)}
    # Who reads the plain-text part reaches the same places as who reads the HTML one.
    assert in_text == in_html
    return in_text


def test_every_template_has_its_variants_here() -> None:
    assert set(VARIANTS) == templates.kinds()


async def test_every_link_in_every_email_answers(
    app_client: AsyncClient, database_url: str
) -> None:
    # A real project and a real conversation of the approved expert on it, so a link that
    # carries their ids reaches what exists.
    expert, expert_headers = await approved_expert(
        app_client, await admin(app_client, database_url)
    )
    expert_cookies = dict(app_client.cookies)  # the expert's API login set them
    _, headers = await client_account(app_client, "Acme Labs")
    created = await app_client.post(
        "/api/v2/projects",
        json=project_body(invited_experts=[expert["id"]]),
        headers=headers,
    )
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    # Invited, the expert may talk before proposing (and still sees the proposal form).
    opened = await app_client.post(
        "/api/v2/conversations", json={"project_id": project_id}, headers=expert_headers
    )
    assert opened.status_code in (200, 201), opened.text
    conversation_id = opened.json()["id"]
    app_client.cookies.clear()
    links: set[str] = set()
    for kind, variants in VARIANTS.items():
        for variant in variants:
            found = _links(_render(kind, variant, project_id, conversation_id))
            assert found, kind
            links |= found

    targets: dict[str, str] = {}
    for link in links:
        parts = urlsplit(link)
        assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL, link
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        targets[link] = target
        answer = await app_client.get(target, headers={"Accept": "text/html"})
        if answer.status_code == 303:
            assert answer.headers["location"] == f"/login?next={quote(target, safe='')}", link
        else:
            assert answer.status_code == 200, (link, answer.status_code)
            assert answer.headers["content-type"].startswith("text/html"), link

    # Logged in as the approved expert, each link shows its page, and the part of it that its
    # fragment names.
    app_client.cookies.update(expert_cookies)
    for link, target in targets.items():
        page = await app_client.get(target, headers={"Accept": "text/html"})
        assert page.status_code == 200, (link, page.status_code)
        fragment = urlsplit(link).fragment
        if fragment:
            assert f'id="{fragment}"' in page.text, link
