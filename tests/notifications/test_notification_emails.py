"""The marketplace's emails, end to end: HTTP requests -> notifications and their jobs in the
same transaction -> a real worker -> a real SMTP server (aiosmtpd). The jobs carry nothing
but ids, and procrastinate's log lines show nothing personal; a notification whose email is
no longer due is skipped, and the job says why."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.config import Settings
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.notifications.service import NotificationService
from chainconsult.schedules import worker_resources
from tests.conftest import make_settings
from tests.infra.jobs.conftest import FAST_JOBS, drain, jobs, query
from tests.market import (
    Headers,
    admin,
    approved_expert,
    client_account,
    project_body,
    proposal_body,
)
from tests.notify import APPROVED, add_account, notify
from tests.smtp import Received, SmtpSink

PUBLIC_URL = "https://chainconsult.example"
TITLE = "Audit our lending protocol"
EXPERTS = {"ada": "Ada Quillfeather", "grace": "Grace Underwood", "linus": "Linus Marrow"}
PRICES = {"ada": "7000.00", "grace": "9000.00", "linus": "8000.00"}
REVIEW = "Found two critical bugs before launch & explained them well."


def project_link(project_id: str) -> str:
    """How an email names a project: its id, then the link that shows it."""
    return f"id {project_id}):\n{PUBLIC_URL}/projects/{project_id}\n"


@pytest.fixture
def mail_settings(database_url: str, tmp_path: Path, sink: SmtpSink) -> Settings:
    return make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        EMAIL_SERVICE="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(sink.port),
        SMTP_TLS="none",
        SMTP_FROM="chainconsult <no-reply@chainconsult.example>",
        PUBLIC_URL=PUBLIC_URL,
        **FAST_JOBS,
    )


@pytest.fixture
def job_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every line procrastinate logs, down to DEBUG."""
    caplog.set_level(logging.DEBUG, logger="procrastinate")
    return caplog


@dataclass
class Story:
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    headers: dict[str, Headers] = field(default_factory=dict)
    project: dict[str, Any] = field(default_factory=dict)
    invite: dict[str, Any] = field(default_factory=dict)

    def email(self, who: str) -> str:
        return str(self.accounts[who]["email"])


async def marketplace_story(
    http: AsyncClient, database_url: str, deliver: Callable[[], Awaitable[None]]
) -> Story:
    """Three experts are approved, a client posts a matching project, all three propose,
    the client accepts Grace's, completes and reviews it, and invites Ada to a private one.
    ``deliver`` runs the queue once the project is posted, as a live worker would have long
    before the first proposal: an email about a project that no longer takes proposals is
    not sent."""
    story = Story()
    admin_headers = await admin(http, database_url)
    for who, name in EXPERTS.items():
        story.accounts[who], story.headers[who] = await approved_expert(
            http, admin_headers, name=name
        )
    story.accounts["client"], story.headers["client"] = await client_account(http, "Acme Labs")
    client = story.headers["client"]
    created = await http.post("/api/v2/projects", json=project_body(title=TITLE), headers=client)
    assert created.status_code == 201, created.text
    story.project = created.json()
    await deliver()
    proposals = {}
    for who in EXPERTS:
        sent = await http.post(
            f"/api/v2/projects/{story.project['id']}/proposals",
            json=proposal_body(price={"amount": PRICES[who], "currency": "USD"}),
            headers=story.headers[who],
        )
        assert sent.status_code == 201, sent.text
        proposals[who] = sent.json()
    accepted = await http.post(
        f"/api/v2/proposals/{proposals['grace']['id']}/accept", headers=client
    )
    assert accepted.status_code == 200, accepted.text
    done = await http.post(f"/api/v2/projects/{story.project['id']}/complete", headers=client)
    assert done.status_code == 200, done.text
    reviewed = await http.post(
        f"/api/v2/projects/{story.project['id']}/review",
        json={"rating": 5, "text": REVIEW},
        headers=client,
    )
    assert reviewed.status_code == 201, reviewed.text
    invited = await http.post(
        "/api/v2/projects",
        json=project_body(
            title="Private bridge review",
            visibility="invite_only",
            invited_experts=[story.accounts["ada"]["id"]],
        ),
        headers=client,
    )
    assert invited.status_code == 201, invited.text
    story.invite = invited.json()
    return story


def by_subject(sink: SmtpSink, address: str) -> dict[str, list[Received]]:
    found: dict[str, list[Received]] = {}
    for mail in sink.messages_to(address):
        found.setdefault(str(mail.message["Subject"]), []).append(mail)
    return found


async def test_an_accepted_proposal_emails_the_chosen_expert_and_declines_the_others(
    client: AsyncClient,
    database_url: str,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
) -> None:
    resources = worker_resources(mail_settings, sessionmaker)
    story = await marketplace_story(client, database_url, lambda: drain(resources))

    await drain(resources)

    project_url = project_link(story.project["id"])
    accepted_subject = f'Your proposal for "{TITLE}" was accepted'
    declined_subject = f'Your proposal for "{TITLE}" was declined'
    grace = by_subject(sink, story.email("grace"))
    [accepted] = grace.pop(accepted_subject)
    assert accepted.message["To"] == f"Grace Underwood <{story.email('grace')}>"
    text = accepted.part("plain")
    assert text.startswith("Hello Grace Underwood,\n")
    assert f'Acme Labs accepted your proposal for "{TITLE}".' in text
    assert project_url in text
    assert "<strong>Acme Labs</strong> accepted your proposal" in accepted.part("html")
    assert declined_subject not in grace
    for who in ("ada", "linus"):
        theirs = by_subject(sink, story.email(who))
        [declined] = theirs.pop(declined_subject)
        assert declined.part("plain").startswith(f"Hello {EXPERTS[who]},\n")
        assert f'The client chose another proposal for "{TITLE}".' in declined.part("plain")
        assert accepted_subject not in theirs

    # The rest of the story reached the right people with the right content, too.
    [completed] = grace.pop(f'"{TITLE}" is complete')
    assert project_url in completed.part("plain")
    [review] = grace.pop("You received a 5-star review")
    assert f'Your work on "{TITLE}" was rated 5 out of 5.' in review.part("plain")
    assert f'"{REVIEW}"' in review.part("plain")
    assert "explained them well" in review.part("html")
    assert "&amp; explained" in review.part("html")
    client_mail = by_subject(sink, story.email("client"))
    senders = []
    for mail in client_mail.pop(f'New proposal on "{TITLE}"'):
        who = next(w for w in EXPERTS if EXPERTS[w] in mail.part("plain"))
        senders.append(who)
        assert (
            f'{EXPERTS[who]} sent a proposal on your project "{TITLE}":\n'
            f"{PRICES[who]} USD, about 14 days."
        ) in mail.part("plain")
    assert sorted(senders) == sorted(EXPERTS)
    ada = by_subject(sink, story.email("ada"))
    [invitation] = ada.pop('Acme Labs invited you to propose on "Private bridge review"')
    assert project_link(story.invite["id"]) in invitation.part("plain")
    for who in EXPERTS:
        theirs = by_subject(sink, story.email(who))
        [matched] = theirs[f'A new project matches your skills: "{TITLE}"']
        assert "Budget: 5000.00 to 12000.00 USD." in matched.part("plain")
        [approved] = theirs["Your expert application was approved"]
        assert "Note from the reviewer:\nWelcome" in approved.part("plain")
        assert f"Welcome to chainconsult, {EXPERTS[who]}" in theirs

    # One email per notification, recorded against its recipient, and nothing else queued.
    notes = query(database_url, "SELECT id::text AS id, recipient_id FROM notifications")
    deliveries = {
        row["idempotency_key"]: row for row in query(database_url, "SELECT * FROM email_deliveries")
    }
    # 3 approvals, 3 matches, 3 proposals, 1 accepted, 2 declined, completed, review, invitation
    assert len(notes) == 15
    for note in notes:
        delivery = deliveries[f"notification:{note['id']}"]
        assert (delivery["status"], delivery["account_id"]) == ("sent", note["recipient_id"])
    # And a welcome and an address verification for each of the 5 accounts.
    assert len(sink.received) == len(notes) + 10


async def test_job_arguments_and_procrastinate_logs_carry_no_personal_data(
    client: AsyncClient,
    database_url: str,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    job_log: pytest.LogCaptureFixture,
) -> None:
    resources = worker_resources(mail_settings, sessionmaker)
    story = await marketplace_story(client, database_url, lambda: drain(resources))
    await drain(resources)
    assert len(sink.received) == 25

    notes = {row["id"] for row in query(database_url, "SELECT id::text AS id FROM notifications")}
    arguments = [row["args"] for row in jobs(database_url)]
    assert sorted(notes) == sorted(
        args["notification_id"] for args in arguments if set(args) == {"notification_id"}
    )
    # A welcome (the account's id) and a verification link (its token row's id) per account.
    accounts = [sorted(args) for args in arguments if set(args) != {"notification_id"}]
    assert sorted(accounts) == [["account_id"]] * 5 + [["token_id"]] * 5

    personal = [*EXPERTS.values(), "Acme Labs", REVIEW]
    personal += [account["email"] for account in story.accounts.values()]
    records = [record for record in job_log.records if record.name.startswith("procrastinate")]
    assert any("notification_id=" in record.getMessage() for record in records)
    for record in records:
        seen = record.getMessage() + json.dumps(record.__dict__, default=str)
        assert not [value for value in personal if value in seen], seen


JOB_OUTCOME = re.compile(
    r"notifications\.send_email\[\d+\]\(notification_id='(?P<id>[^']+)'\) ended with status:"
    r" Success, lasted [\d.]+ s - Result: (?P<result>.+)$"
)


async def test_an_email_no_longer_due_is_skipped_and_the_job_says_why(
    client: AsyncClient,
    database_url: str,
    mail_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sink: SmtpSink,
    job_log: pytest.LogCaptureFixture,
) -> None:
    resources = worker_resources(mail_settings, sessionmaker)
    admin_headers = await admin(client, database_url)
    ada, ada_headers = await approved_expert(client, admin_headers, name="Ada")
    linus, _ = await approved_expert(client, admin_headers, name="Linus")
    owner_account, owner = await client_account(client, "Acme Labs")
    await drain(resources)
    sink.received.clear()
    job_log.clear()

    # A project cancelled, and a proposal withdrawn, before their emails went out.
    first = (await client.post("/api/v2/projects", json=project_body(), headers=owner)).json()
    bid = await client.post(
        f"/api/v2/projects/{first['id']}/proposals", json=proposal_body(), headers=ada_headers
    )
    await client.post(f"/api/v2/proposals/{bid.json()['id']}/withdraw", headers=ada_headers)
    cancelled = await client.patch(
        f"/api/v2/projects/{first['id']}", json={"status": "cancelled"}, headers=owner
    )
    assert cancelled.status_code == 200
    # A recipient deactivated, and a notification deleted, before theirs went out.
    second = (await client.post("/api/v2/projects", json=project_body(), headers=owner)).json()
    query(
        database_url, "UPDATE accounts SET is_active = false WHERE id = %(id)s", {"id": linus["id"]}
    )
    gone = await notify(sessionmaker, database_url, to="gone@example.com")
    query(database_url, "DELETE FROM notifications WHERE id = %(id)s", {"id": gone.notification_id})

    await drain(resources)

    results: dict[str, list[str]] = {}
    for record in job_log.records:
        if found := JOB_OUTCOME.search(record.getMessage()):
            results.setdefault(found["result"], []).append(found["id"])
    kinds = {
        row["id"]: (row["kind"], row["recipient_id"])
        for row in query(
            database_url, "SELECT id::text, kind, recipient_id::text FROM notifications"
        )
    }
    outcome = {
        result: sorted(kinds.get(i, ("deleted", None)) for i in ids)
        for result, ids in results.items()
    }
    assert outcome == {
        "sent": [("project_matched", ada["id"])],
        "skipped: project cancelled": [("project_matched", ada["id"])],
        "skipped: proposal withdrawn": [("proposal_received", owner_account["id"])],
        "skipped: recipient inactive": [("project_matched", linus["id"])] * 2,
        "skipped: notification gone": [("deleted", None)],
    }
    [only] = sink.received
    assert only.recipients == [ada["email"]]
    assert project_link(second["id"]) in only.part("plain")
    assert {row["status"] for row in jobs(database_url)} == {"succeeded"}


async def test_a_notification_and_its_email_job_commit_or_roll_back_together(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    first = await add_account(sessionmaker, email="first@example.com")
    second = await add_account(sessionmaker, email="second@example.com")

    async def failing_event() -> None:
        async with sessionmaker() as session, session.begin():
            await NotificationService(session).notify(
                recipients=[first, second],
                kind=NotificationKind.application_decided,
                payload=APPROVED,
            )
            raise RuntimeError("the event failed after notifying")

    with pytest.raises(RuntimeError, match="after notifying"):
        await failing_event()
    assert query(database_url, "SELECT count(*) AS n FROM notifications") == [{"n": 0}]
    assert jobs(database_url) == []

    async with sessionmaker() as session, session.begin():
        ids = await NotificationService(session).notify(
            recipients=[first, second, first],
            kind=NotificationKind.application_decided,
            payload=APPROVED,
        )

    assert len(ids) == 2
    assert [(row["task_name"], row["queue_name"], row["args"]) for row in jobs(database_url)] == [
        ("notifications.send_email", "default", {"notification_id": str(note)}) for note in ids
    ]
