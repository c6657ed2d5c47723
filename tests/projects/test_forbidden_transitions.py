"""Done-when 3: every forbidden transition is a 4xx problem and leaves every row unchanged."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.helpers import login, register
from tests.market import (
    Headers,
    admin,
    application_body,
    approved_expert,
    client_account,
    project_body,
    proposal_body,
    snapshot,
)


class Market:
    """A client's open project with two pending proposals, and the people around it."""

    def __init__(self, client: AsyncClient, database_url: str) -> None:
        self.http = client
        self.database_url = database_url

    async def build(self) -> Market:
        self.admin = await admin(self.http, self.database_url)
        self.expert, self.expert_headers = await approved_expert(self.http, self.admin, name="E1")
        self.rival, self.rival_headers = await approved_expert(self.http, self.admin, name="E2")
        self.owner, self.owner_headers = await client_account(self.http, "Owner")
        self.stranger, self.stranger_headers = await client_account(self.http, "Stranger")
        self.project = await self.create_project(self.owner_headers)
        self.proposal = await self.propose(self.project["id"], self.expert_headers)
        self.rival_proposal = await self.propose(self.project["id"], self.rival_headers)
        return self

    async def create_project(self, headers: Headers, **overrides: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/api/v2/projects", json=project_body(**overrides), headers=headers
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def propose(self, project_id: str, headers: Headers) -> dict[str, Any]:
        response = await self.http.post(
            f"/api/v2/projects/{project_id}/proposals", json=proposal_body(), headers=headers
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def market(client: AsyncClient, database_url: str) -> Market:
    return await Market(client, database_url).build()


async def refused(market: Market, request: Any, status: int) -> Response:
    """Run ``request`` and check it is a problem with ``status`` that changed no row."""
    before = snapshot(market.database_url)
    response: Response = await request
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert snapshot(market.database_url) == before
    return response


async def test_expert_cannot_propose_on_own_project(market: Market) -> None:
    own = await market.create_project(market.expert_headers)
    await refused(
        market,
        market.http.post(
            f"/api/v2/projects/{own['id']}/proposals",
            json=proposal_body(),
            headers=market.expert_headers,
        ),
        403,
    )


async def test_unapproved_expert_and_client_cannot_propose(market: Market) -> None:
    await register(market.http, email="candidate@example.com", role="expert")
    candidate = await login(market.http, "candidate@example.com")
    applied = await market.http.post(
        "/api/v2/expert-applications", json=application_body(), headers=candidate
    )
    assert applied.status_code == 201
    for headers in (candidate, market.stranger_headers):
        await refused(
            market,
            market.http.post(
                f"/api/v2/projects/{market.project['id']}/proposals",
                json=proposal_body(),
                headers=headers,
            ),
            403,
        )


async def test_second_active_proposal_by_one_expert_is_409(market: Market) -> None:
    await refused(
        market,
        market.http.post(
            f"/api/v2/projects/{market.project['id']}/proposals",
            json=proposal_body(),
            headers=market.expert_headers,
        ),
        409,
    )


async def test_accepting_twice_or_a_second_proposal_is_409(market: Market) -> None:
    accepted = await market.http.post(
        f"/api/v2/proposals/{market.proposal['id']}/accept", headers=market.owner_headers
    )
    assert accepted.status_code == 200
    await refused(
        market,
        market.http.post(
            f"/api/v2/proposals/{market.proposal['id']}/accept", headers=market.owner_headers
        ),
        409,
    )
    await refused(
        market,
        market.http.post(
            f"/api/v2/proposals/{market.rival_proposal['id']}/accept",
            headers=market.owner_headers,
        ),
        409,
    )


async def test_only_the_owner_accepts(market: Market) -> None:
    for headers in (market.stranger_headers, market.expert_headers):
        await refused(
            market,
            market.http.post(f"/api/v2/proposals/{market.proposal['id']}/accept", headers=headers),
            404,
        )


async def test_reviewing_twice_or_before_completion_is_refused(market: Market) -> None:
    project_id = market.project["id"]
    review = {"rating": 5, "text": "Great"}
    await market.http.post(
        f"/api/v2/proposals/{market.proposal['id']}/accept", headers=market.owner_headers
    )
    await refused(
        market,
        market.http.post(
            f"/api/v2/projects/{project_id}/review", json=review, headers=market.owner_headers
        ),
        409,
    )
    await market.http.post(f"/api/v2/projects/{project_id}/complete", headers=market.owner_headers)
    first = await market.http.post(
        f"/api/v2/projects/{project_id}/review", json=review, headers=market.owner_headers
    )
    assert first.status_code == 201
    await refused(
        market,
        market.http.post(
            f"/api/v2/projects/{project_id}/review",
            json={"rating": 1, "text": "Changed my mind"},
            headers=market.owner_headers,
        ),
        409,
    )
    await refused(
        market,
        market.http.post(
            f"/api/v2/projects/{project_id}/review", json=review, headers=market.expert_headers
        ),
        403,
    )


async def test_editing_someone_elses_project_is_refused(market: Market) -> None:
    project_id = market.project["id"]
    await refused(
        market,
        market.http.patch(
            f"/api/v2/projects/{project_id}",
            json={"title": "Hijacked title"},
            headers=market.stranger_headers,
        ),
        403,
    )
    await refused(
        market,
        market.http.patch(
            f"/api/v2/projects/{project_id}",
            json={"status": "cancelled"},
            headers=market.expert_headers,
        ),
        403,
    )
    await refused(
        market,
        market.http.post(
            f"/api/v2/projects/{project_id}/complete", headers=market.stranger_headers
        ),
        403,
    )


async def test_invite_only_project_is_404_to_outsiders(market: Market) -> None:
    private = await market.create_project(
        market.owner_headers, visibility="invite_only", invited_experts=[market.expert["id"]]
    )
    for method, path, body in [
        ("GET", f"/api/v2/projects/{private['id']}", None),
        ("PATCH", f"/api/v2/projects/{private['id']}", {"title": "Peeking in"}),
        ("POST", f"/api/v2/projects/{private['id']}/proposals", proposal_body()),
        ("GET", f"/api/v2/projects/{private['id']}/proposals", None),
    ]:
        await refused(
            market,
            market.http.request(method, path, json=body, headers=market.rival_headers),
            404,
        )
    invited_view = await market.http.get(
        f"/api/v2/projects/{private['id']}", headers=market.expert_headers
    )
    assert invited_view.status_code == 200
    assert invited_view.json()["invited_experts"] is None  # only the owner sees the list


async def test_an_invited_expert_hears_the_rule_that_refused_not_a_404(market: Market) -> None:
    private = await market.create_project(
        market.owner_headers, visibility="invite_only", invited_experts=[market.expert["id"]]
    )
    wrong_currency = await refused(
        market,
        market.http.post(
            f"/api/v2/projects/{private['id']}/proposals",
            json=proposal_body(price={"amount": "9000.00", "currency": "EUR"}),
            headers=market.expert_headers,
        ),
        422,
    )
    assert wrong_currency.json()["detail"] == "Price the proposal in the project's budget currency."


async def test_nothing_happens_on_a_cancelled_project(market: Market) -> None:
    project_id = market.project["id"]
    cancelled = await market.http.patch(
        f"/api/v2/projects/{project_id}",
        json={"status": "cancelled"},
        headers=market.owner_headers,
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    _, third_headers = await approved_expert(market.http, market.admin, name="E3")
    attempts = [
        (
            "POST",
            f"/api/v2/projects/{project_id}/proposals",
            proposal_body(),
            third_headers,
            409,
        ),
        ("PATCH", f"/api/v2/projects/{project_id}", {"title": "New title"}, None, 409),
        ("PATCH", f"/api/v2/projects/{project_id}", {"status": "cancelled"}, None, 409),
        ("POST", f"/api/v2/projects/{project_id}/complete", None, None, 409),
        ("POST", f"/api/v2/proposals/{market.proposal['id']}/accept", None, None, 409),
        (
            "POST",
            f"/api/v2/projects/{project_id}/review",
            {"rating": 3, "text": "x"},
            None,
            409,
        ),
    ]
    for method, path, body, headers, status in attempts:
        await refused(
            market,
            market.http.request(method, path, json=body, headers=headers or market.owner_headers),
            status,
        )
    withdraw = await market.http.post(
        f"/api/v2/proposals/{market.proposal['id']}/withdraw", headers=market.expert_headers
    )
    assert withdraw.status_code == 409  # it was declined by the cancellation


async def test_withdrawing_someone_elses_proposal_is_404(market: Market) -> None:
    await refused(
        market,
        market.http.post(
            f"/api/v2/proposals/{market.proposal['id']}/withdraw", headers=market.rival_headers
        ),
        404,
    )
    await refused(
        market,
        market.http.post(f"/api/v2/proposals/{uuid.uuid4()}/accept", headers=market.owner_headers),
        404,
    )


async def test_withdrawn_proposal_frees_the_slot(market: Market) -> None:
    withdrawn = await market.http.post(
        f"/api/v2/proposals/{market.proposal['id']}/withdraw", headers=market.expert_headers
    )
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"
    await refused(
        market,
        market.http.post(
            f"/api/v2/proposals/{market.proposal['id']}/accept", headers=market.owner_headers
        ),
        409,
    )
    again = await market.http.post(
        f"/api/v2/projects/{market.project['id']}/proposals",
        json=proposal_body(),
        headers=market.expert_headers,
    )
    assert again.status_code == 201


async def test_null_in_a_project_edit_is_422(market: Market) -> None:
    response = await refused(
        market,
        market.http.patch(
            f"/api/v2/projects/{market.project['id']}",
            json={"title": None},
            headers=market.owner_headers,
        ),
        422,
    )
    assert "null is not allowed" in response.json()["errors"][0]["detail"]


async def test_bad_project_and_proposal_input_is_422(market: Market) -> None:
    cases = [
        project_body(budget={"min": "900.00", "max": "100.00", "currency": "USD"}),
        project_body(deadline="2001-01-01"),
        project_body(skills=["cobol"]),
        project_body(budget={"min": "1.001", "max": "5.00", "currency": "USD"}),
        project_body(visibility="secret"),
        project_body(invited_experts=[str(uuid.uuid4())], visibility="invite_only"),
    ]
    for body in cases:
        await refused(
            market,
            market.http.post("/api/v2/projects", json=body, headers=market.owner_headers),
            422,
        )
    await refused(
        market,
        market.http.post(
            f"/api/v2/projects/{market.project['id']}/proposals",
            json=proposal_body(price={"amount": "10.00", "currency": "EUR"}),
            headers=market.expert_headers,
        ),
        422,
    )
