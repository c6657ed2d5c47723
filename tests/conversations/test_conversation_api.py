"""Two people converse through the API: one thread per (project, expert), unread counts and
read markers, the edit window and soft deletion, and everyone else refused."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import cast

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.service import Principal
from chainconsult.accounts.verification import EmailUnverified
from chainconsult.conversations.service import ensure_may_message
from chainconsult.models.accounts import Plan, Role
from tests.conversations.story import proposed_thread, say
from tests.market import approved_expert, client_account, project_body, query


async def unread_of(client: AsyncClient, headers: dict[str, str]) -> dict[str, int]:
    listed = await client.get("/api/v2/conversations", headers=headers)
    assert listed.status_code == 200, listed.text
    return {item["id"]: item["unread"] for item in listed.json()["data"]}


async def test_two_participants_converse_with_unread_counts_and_read_markers(
    client: AsyncClient, database_url: str
) -> None:
    thread = await proposed_thread(client, database_url)
    # The expert opening the same pair finds the same thread.
    again = await client.post(
        "/api/v2/conversations",
        json={"project_id": thread.project_id},
        headers=thread.expert_headers,
    )
    assert again.status_code == 200
    assert again.json()["id"] == thread.id

    first = await say(client, thread, thread.client_headers, "Can you start on Monday?")
    second = await say(client, thread, thread.client_headers, "And send\nthe plan first.")
    assert second["body"] == "And send\nthe plan first."
    assert second["author_id"] == thread.client["id"]
    assert second["deleted"] is False
    assert await unread_of(client, thread.expert_headers) == {thread.id: 2}
    assert await unread_of(client, thread.client_headers) == {thread.id: 0}

    read = await client.post(
        f"/api/v2/conversations/{thread.id}/read",
        json={"up_to_message_id": first["id"]},
        headers=thread.expert_headers,
    )
    assert read.status_code == 204
    assert await unread_of(client, thread.expert_headers) == {thread.id: 1}
    # A marker never moves back.
    await client.post(
        f"/api/v2/conversations/{thread.id}/read",
        json={"up_to_message_id": second["id"]},
        headers=thread.expert_headers,
    )
    await client.post(
        f"/api/v2/conversations/{thread.id}/read",
        json={"up_to_message_id": first["id"]},
        headers=thread.expert_headers,
    )
    assert await unread_of(client, thread.expert_headers) == {thread.id: 0}

    reply = await say(client, thread, thread.expert_headers, "Yes, Monday works.")
    assert await unread_of(client, thread.client_headers) == {thread.id: 1}
    listed = await client.get(
        f"/api/v2/conversations/{thread.id}/messages",
        params={"limit": 2},
        headers=thread.client_headers,
    )
    page = listed.json()
    assert [m["id"] for m in page["data"]] == [reply["id"], second["id"]]
    rest = await client.get(
        f"/api/v2/conversations/{thread.id}/messages",
        params={"cursor": page["next_cursor"]},
        headers=thread.client_headers,
    )
    assert [m["id"] for m in rest.json()["data"]] == [first["id"]]
    assert rest.json()["next_cursor"] is None


async def test_edit_within_ten_minutes_by_its_author_only_and_soft_delete(
    client: AsyncClient, database_url: str
) -> None:
    thread = await proposed_thread(client, database_url)
    message = await say(client, thread, thread.expert_headers, "Price is 9000 USD.")
    by_other = await client.patch(
        f"/api/v2/messages/{message['id']}", json={"body": "Free!"}, headers=thread.client_headers
    )
    assert by_other.status_code == 403
    edited = await client.patch(
        f"/api/v2/messages/{message['id']}",
        json={"body": "Price is 8500 USD."},
        headers=thread.expert_headers,
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["body"] == "Price is 8500 USD."
    assert edited.json()["edited_at"]

    old = await say(client, thread, thread.expert_headers, "An old remark.")
    query(
        database_url,
        "UPDATE conversation_messages SET created_at = %s WHERE id = %s",
        dt.datetime.now(dt.UTC) - dt.timedelta(minutes=11),
        old["id"],
    )
    late = await client.patch(
        f"/api/v2/messages/{old['id']}", json={"body": "Rewritten"}, headers=thread.expert_headers
    )
    assert late.status_code == 409
    assert late.headers["content-type"].startswith("application/problem+json")

    not_theirs = await client.delete(
        f"/api/v2/messages/{message['id']}", headers=thread.client_headers
    )
    assert not_theirs.status_code == 403
    deleted = await client.delete(
        f"/api/v2/messages/{message['id']}", headers=thread.expert_headers
    )
    assert deleted.status_code == 204
    listed = await client.get(
        f"/api/v2/conversations/{thread.id}/messages", headers=thread.client_headers
    )
    shown = {m["id"]: m for m in listed.json()["data"]}[message["id"]]
    assert shown["deleted"] is True
    assert shown["body"] == "message deleted"
    [(stored,)] = query(
        database_url, "SELECT body FROM conversation_messages WHERE id = %s", message["id"]
    )
    assert stored == ""
    # A deleted message no longer counts as unread and cannot be edited.
    assert await unread_of(client, thread.client_headers) == {thread.id: 2 - 1}
    again = await client.patch(
        f"/api/v2/messages/{message['id']}", json={"body": "Back"}, headers=thread.expert_headers
    )
    assert again.status_code == 409


async def test_control_characters_and_empty_bodies_are_refused(
    client: AsyncClient, database_url: str
) -> None:
    thread = await proposed_thread(client, database_url)
    for body in ["", "   ", "bell\x07", "x" * 10_001]:
        refused = await client.post(
            f"/api/v2/conversations/{thread.id}/messages",
            json={"body": body},
            headers=thread.client_headers,
        )
        assert refused.status_code == 422, body
        assert refused.json()["errors"][0]["pointer"] == "#/body"
    assert query(database_url, "SELECT count(*) FROM conversation_messages") == [(0,)]


async def test_a_third_user_hears_404_and_an_anonymous_caller_401(
    client: AsyncClient, database_url: str
) -> None:
    thread = await proposed_thread(client, database_url)
    message = await say(client, thread, thread.client_headers, "Between us.")
    _, stranger = await client_account(client, name="Nosy Neighbour")
    attempts = [
        ("GET", f"/api/v2/conversations/{thread.id}", None),
        ("GET", f"/api/v2/conversations/{thread.id}/messages", None),
        ("POST", f"/api/v2/conversations/{thread.id}/messages", {"body": "hi"}),
        ("POST", f"/api/v2/conversations/{thread.id}/read", {"up_to_message_id": message["id"]}),
        ("PATCH", f"/api/v2/messages/{message['id']}", {"body": "mine now"}),
        ("DELETE", f"/api/v2/messages/{message['id']}", None),
    ]
    client.cookies.clear()  # logins set a session cookie: anonymous means without it
    for method, path, body in attempts:
        refused = await client.request(method, path, json=body, headers=stranger)
        assert refused.status_code == 404, (method, path, refused.text)
        anonymous = await client.request(method, path, json=body)
        assert anonymous.status_code == 401, (method, path)
    assert await unread_of(client, stranger) == {}
    assert (await client.get("/api/v2/conversations")).status_code == 401


async def test_only_an_expert_who_proposed_or_was_invited_can_be_talked_to(
    client: AsyncClient, database_url: str
) -> None:
    thread = await proposed_thread(client, database_url)
    other, other_headers = await approved_expert(client, thread.admin_headers, name="Bo Expert")
    # Not proposed, not invited: the owner cannot open a thread with them, nor they with them.
    refused = await client.post(
        "/api/v2/conversations",
        json={"project_id": thread.project_id, "expert_id": other["id"]},
        headers=thread.client_headers,
    )
    assert refused.status_code == 409
    self_opened = await client.post(
        "/api/v2/conversations", json={"project_id": thread.project_id}, headers=other_headers
    )
    assert self_opened.status_code == 403
    # Invited to an invite-only project: the thread opens before any proposal.
    invited = await client.post(
        "/api/v2/projects",
        json=project_body(visibility="invite_only", invited_experts=[other["id"]]),
        headers=thread.client_headers,
    )
    assert invited.status_code == 201, invited.text
    opened = await client.post(
        "/api/v2/conversations",
        json={"project_id": invited.json()["id"]},
        headers=other_headers,
    )
    assert opened.status_code == 201, opened.text
    assert opened.json()["client_id"] == thread.client["id"]


async def test_an_admin_reads_a_thread_for_a_dispute_and_the_read_is_audited(
    client: AsyncClient, database_url: str
) -> None:
    thread = await proposed_thread(client, database_url)
    await say(client, thread, thread.client_headers, "You never delivered.")
    read = await client.get(
        f"/api/v2/conversations/{thread.id}/messages", headers=thread.admin_headers
    )
    assert read.status_code == 200
    assert [m["body"] for m in read.json()["data"]] == ["You never delivered."]
    audited = query(
        database_url,
        "SELECT resource_id FROM audit_log WHERE action = 'conversation.read_by_admin'",
    )
    assert audited == [(thread.id,)]
    # Reading is all: an admin does not write into others' threads.
    written = await client.post(
        f"/api/v2/conversations/{thread.id}/messages",
        json={"body": "Admin here"},
        headers=thread.admin_headers,
    )
    assert written.status_code == 404


async def test_an_unverified_account_may_not_message() -> None:
    # The one guard every write in a thread passes (conversations/service.py).
    unverified = Principal(
        account_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        email="new@example.com",
        display_name="New",
        role=Role.client,
        plan=Plan.free,
        created_at=dt.datetime.now(dt.UTC),
        email_verified=False,
        verification_required=True,
    )
    with pytest.raises(EmailUnverified):
        await ensure_may_message(cast(AsyncSession, None), unverified)
    await ensure_may_message(
        cast(AsyncSession, None), dataclasses.replace(unverified, email_verified=True)
    )
    await ensure_may_message(
        cast(AsyncSession, None), dataclasses.replace(unverified, verification_required=False)
    )
