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


def _render(kind: str, variant: dict[str, Any], project_id: str) -> RenderedEmail:
    context = {**variant, "project_id": project_id} if "project_id" in variant else variant
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
    # A real project's id, so a link that carries one reaches a project that exists.
    _, headers = await client_account(app_client, "Acme Labs")
    created = await app_client.post("/api/v2/projects", json=project_body(), headers=headers)
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    app_client.cookies.clear()  # the API login set the client's cookies
    links: set[str] = set()
    for kind, variants in VARIANTS.items():
        for variant in variants:
            found = _links(_render(kind, variant, project_id))
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

    # Logged in as an approved expert (the API login left its session cookie), each link
    # shows its page, and the part of it that its fragment names.
    await approved_expert(app_client, await admin(app_client, database_url))
    for link, target in targets.items():
        page = await app_client.get(target, headers={"Accept": "text/html"})
        assert page.status_code == 200, (link, page.status_code)
        fragment = urlsplit(link).fragment
        if fragment:
            assert f'id="{fragment}"' in page.text, link
