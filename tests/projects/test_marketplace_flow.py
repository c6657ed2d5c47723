"""Done-when 1: the whole marketplace through HTTP only, each step notifying the right party."""

from __future__ import annotations

from httpx import AsyncClient

from tests.helpers import login, register
from tests.market import (
    admin,
    application_body,
    client_account,
    kinds,
    notifications,
    project_body,
    proposal_body,
)


async def test_apply_vet_propose_accept_complete_review(
    client: AsyncClient, database_url: str
) -> None:
    admin_headers = await admin(client, database_url)

    # An expert candidate applies; an admin approves with a note.
    expert = await register(client, email="satoshi@example.com", role="expert", name="Satoshi N")
    expert_headers = await login(client, "satoshi@example.com")
    applied = await client.post(
        "/api/v2/expert-applications",
        json=application_body(
            headline="Zero-knowledge circuits and Solidity audits",
            wallet_address="0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            wallet_chain="ethereum",
        ),
        headers=expert_headers,
    )
    assert applied.status_code == 201, applied.text
    assert applied.json()["status"] == "submitted"
    queue = await client.get(
        "/api/v2/admin/expert-applications", params={"status": "submitted"}, headers=admin_headers
    )
    assert [item["id"] for item in queue.json()["data"]] == [applied.json()["id"]]
    decided = await client.post(
        f"/api/v2/admin/expert-applications/{applied.json()['id']}/decision",
        json={"decision": "approve", "note": "Strong audit record"},
        headers=admin_headers,
    )
    assert decided.status_code == 200
    assert decided.json()["status"] == "approved"
    assert (await client.get("/api/v2/auth/me", headers=expert_headers)).json()["role"] == "expert"
    decision_note = (await notifications(client, expert_headers))[0]
    assert decision_note["kind"] == "application_decided"
    assert decision_note["payload"]["decision"] == "approved"
    assert decision_note["payload"]["note"] == "Strong audit record"

    # The expert is in the public directory (no login needed).
    listed = await client.get("/api/v2/experts", params={"skill": "solidity"})
    assert [item["id"] for item in listed.json()["data"]] == [expert["id"]]
    assert listed.json()["data"][0]["rating"] == {"average": "0.00", "count": 0}

    # A second approved expert who will be declined, and one whose skills do not match.
    rival, rival_headers = await approved_expert_via(client, admin_headers, "Rival")
    _, unrelated_headers = await approved_expert_via(
        client, admin_headers, "Mover", skills=["move"], chains=["sui"]
    )

    # A client submits a public project: the matching experts are told, the other is not.
    _, client_headers = await client_account(client, "Clara Client")
    created = await client.post("/api/v2/projects", json=project_body(), headers=client_headers)
    assert created.status_code == 201, created.text
    project = created.json()
    assert project["status"] == "open"
    assert project["budget"] == {"min": "5000.00", "max": "12000.00", "currency": "USD"}
    matched = await notifications(client, expert_headers)
    assert matched[0]["kind"] == "project_matched"
    assert matched[0]["payload"]["project_id"] == project["id"]
    assert "project_matched" in kinds(await notifications(client, rival_headers))
    assert "project_matched" not in kinds(await notifications(client, unrelated_headers))

    # Two experts propose; the client is notified of each.
    mine = await client.post(
        f"/api/v2/projects/{project['id']}/proposals", json=proposal_body(), headers=expert_headers
    )
    theirs = await client.post(
        f"/api/v2/projects/{project['id']}/proposals",
        json=proposal_body(price={"amount": "7000.00", "currency": "USD"}),
        headers=rival_headers,
    )
    assert mine.status_code == theirs.status_code == 201, (mine.text, theirs.text)
    assert mine.json()["price"] == {"amount": "9000.00", "currency": "USD"}
    client_inbox = await notifications(client, client_headers)
    assert kinds(client_inbox) == ["proposal_received", "proposal_received"]
    listed_proposals = await client.get(
        f"/api/v2/projects/{project['id']}/proposals", headers=client_headers
    )
    assert [p["id"] for p in listed_proposals.json()["data"]] == [
        mine.json()["id"],
        theirs.json()["id"],
    ]

    # The client accepts one: the project is in progress, the other proposal is declined.
    accepted = await client.post(
        f"/api/v2/proposals/{mine.json()['id']}/accept", headers=client_headers
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    after_accept = await client.get(f"/api/v2/projects/{project['id']}", headers=client_headers)
    assert after_accept.json()["status"] == "in_progress"
    assert after_accept.json()["expert_id"] == expert["id"]
    rival_view = await client.get(
        f"/api/v2/projects/{project['id']}/proposals", headers=rival_headers
    )
    assert [p["status"] for p in rival_view.json()["data"]] == ["declined"]
    assert (await notifications(client, expert_headers))[0]["kind"] == "proposal_accepted"
    declined_note = (await notifications(client, rival_headers))[0]
    assert declined_note["kind"] == "proposal_declined"
    assert declined_note["payload"]["reason"] == "another_accepted"
    assert rival["id"] != expert["id"]

    # Delivery and the review; the expert hears of both.
    completed = await client.post(
        f"/api/v2/projects/{project['id']}/complete", headers=client_headers
    )
    assert completed.status_code == 200
    assert completed.json()["status"] == "completed"
    assert (await notifications(client, expert_headers))[0]["kind"] == "project_completed"
    reviewed = await client.post(
        f"/api/v2/projects/{project['id']}/review",
        json={"rating": 4, "text": "Thorough report, found two real issues."},
        headers=client_headers,
    )
    assert reviewed.status_code == 201, reviewed.text
    review_note = (await notifications(client, expert_headers))[0]
    assert review_note["kind"] == "review_received"
    assert review_note["payload"]["rating"] == 4

    # The new rating is visible in the directory list and on the profile.
    listed = await client.get("/api/v2/experts", params={"q": "zero-knowledge"})
    assert listed.json()["data"][0]["rating"] == {"average": "4.00", "count": 1}
    detail = await client.get(f"/api/v2/experts/{expert['id']}")
    assert detail.status_code == 200
    assert detail.json()["rating"] == {"average": "4.00", "count": 1}
    assert detail.json()["rating_distribution"]["4"] == 1
    assert detail.json()["recent_reviews"][0]["text"] == "Thorough report, found two real issues."
    assert "wallet_address" not in detail.json()


async def approved_expert_via(
    client: AsyncClient, admin_headers: dict[str, str], name: str, **application: object
) -> tuple[dict[str, object], dict[str, str]]:
    from tests.market import approved_expert

    return await approved_expert(client, admin_headers, name=name, **application)
