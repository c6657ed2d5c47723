"""Export and erasure cover conversations: an erased participant's messages and files go
(the thread stays for the other), and so do their live events and those quoting them."""

from __future__ import annotations

from httpx import AsyncClient

from tests.conversations.story import proposed_thread, say
from tests.helpers import PASSWORD
from tests.market import query


async def test_erasure_removes_a_participants_words_and_keeps_the_thread(
    client: AsyncClient, database_url: str
) -> None:
    thread = await proposed_thread(client, database_url)
    words = await say(client, thread, thread.expert_headers, "My private phone is 555-0199")
    reply = await say(client, thread, thread.client_headers, "Thanks, noted.")
    uploaded = await client.post(
        f"/api/v2/conversations/{thread.id}/files",
        files={"file": ("cv.txt", b"expert cv", "text/plain")},
        headers=thread.expert_headers,
    )
    assert uploaded.status_code == 201

    exported = await client.get("/api/v2/me/export", headers=thread.expert_headers)
    tables = exported.json()["tables"]
    assert any(
        row["body"] == "My private phone is 555-0199" for row in tables["conversation_messages"]
    )

    erased = await client.request(
        "DELETE", "/api/v2/me", json={"password": PASSWORD}, headers=thread.expert_headers
    )
    assert erased.status_code == 204
    listed = await client.get(
        f"/api/v2/conversations/{thread.id}/messages", headers=thread.client_headers
    )
    shown = {m["id"]: m for m in listed.json()["data"]}
    assert shown[words["id"]]["deleted"] is True
    assert shown[words["id"]]["author_id"] is None
    assert shown[reply["id"]]["body"] == "Thanks, noted."
    assert query(
        database_url, "SELECT count(*) FROM conversation_messages WHERE body LIKE %s", "%555-0199%"
    ) == [(0,)]
    assert query(
        database_url, "SELECT count(*) FROM live_events WHERE data::text LIKE %s", "%555-0199%"
    ) == [(0,)]
    # Its file goes with the sweep the erasure queued.
    assert query(
        database_url,
        "SELECT count(*) FROM procrastinate_jobs"
        " WHERE task_name = 'conversations.remove_deleted_files' AND status = 'todo'",
    ) == [(1,)]
