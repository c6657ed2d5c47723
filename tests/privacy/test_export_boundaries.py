"""The export holds the person's data and nobody else's: an admin's audit entry about the
account says what was done, not who did it from where; a stored log line is the person's only
when it quotes their whole address (john@example.com does not quote n@example.com)."""

from __future__ import annotations

import uuid

from httpx import AsyncClient

from tests.helpers import PASSWORD, login, register
from tests.market import admin, query

ADMIN_AGENT = "AdminBrowser/7.7"


async def test_an_admins_entry_about_the_account_is_exported_without_the_admin(
    client: AsyncClient, database_url: str
) -> None:
    person = await register(client, email="pia@example.com")
    headers = await login(client, "pia@example.com")
    admin_headers = {**await admin(client, database_url), "User-Agent": ADMIN_AGENT}
    unlocked = await client.post(
        f"/api/v2/admin/users/{person['id']}/unlock", headers=admin_headers
    )
    assert unlocked.status_code == 204

    export = (await client.get("/api/v2/me/export", headers=headers)).json()

    entries = {row["action"]: row for row in export["tables"]["audit_log"]}
    admins = entries["auth.unlocked"]
    assert admins["resource_id"] == person["id"]
    assert not {"actor_id", "ip", "user_agent"} & admins.keys()
    assert ADMIN_AGENT not in str(export)
    # The person's own entries keep where they came from.
    own = [row for row in export["tables"]["audit_log"] if row.get("actor_id") == person["id"]]
    assert own
    assert all("ip" in row for row in own)


async def test_a_log_line_is_the_persons_only_when_it_quotes_their_whole_address(
    client: AsyncClient, database_url: str
) -> None:
    await register(client, email="n@example.com")
    headers = await login(client, "n@example.com")
    lines = {
        "refused {'N@example.com'}": True,
        "Mail to n@example.com.": True,
        "recipient john@example.com refused": False,
        "recipient n@example.com.au refused": False,
        "recipient n@example.community refused": False,
    }
    for event in lines:
        query(
            database_url,
            "INSERT INTO log_entries (created_at, level, logger, event, context)"
            " VALUES (now(), 'error', 'test', %s, %s)",
            event,
            f'{{"marker": "{uuid.uuid4()}"}}',
        )

    export = (await client.get("/api/v2/me/export", headers=headers)).json()

    exported = {row["event"] for row in export["tables"]["log_entries"]}
    assert exported == {event for event, about in lines.items() if about}
    erased = await client.request(
        "DELETE", "/api/v2/me", json={"password": PASSWORD}, headers=headers
    )
    assert erased.status_code == 204, erased.text
    left = {row[0] for row in query(database_url, "SELECT event FROM log_entries")}
    assert left == {event for event, about in lines.items() if not about}
