"""The expert directory through API v1: numbered pages and a bare array, `name` and a whole
dollar `hourly_rate`, served by the v2 handlers through the declared changes (the numbered
pages by the v1 layer's own route)."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.market import admin, approved_expert

V2_ONLY = {"display_name"}


async def _three_experts(client: AsyncClient, database_url: str) -> list[dict[str, Any]]:
    admin_headers = await admin(client, database_url)
    accounts = []
    for name, rate in (("Ada", "150.00"), ("Grace", "99.50"), ("Linus", "80.25")):
        account, _ = await approved_expert(
            client, admin_headers, name=name, hourly_rate={"amount": rate, "currency": "USD"}
        )
        accounts.append(account)
    return accounts


def _assert_v1_expert(item: dict[str, Any]) -> None:
    assert isinstance(item["name"], str)
    assert isinstance(item["hourly_rate"], int)
    assert V2_ONLY.isdisjoint(item)


async def test_v1_expert_list_is_numbered_pages_by_url_and_by_header(
    client: AsyncClient, database_url: str
) -> None:
    accounts = await _three_experts(client, database_url)

    page1 = await client.get("/api/v1/experts", params={"page": 1, "per_page": 2})
    by_header = await client.get(
        "/api/experts", params={"page": 1, "per_page": 2}, headers={"API-Version": "1"}
    )
    page2 = await client.get("/api/v1/experts", params={"page": 2, "per_page": 2})

    assert page1.status_code == 200, page1.text
    assert isinstance(page1.json(), list)
    assert len(page1.json()) == 2
    assert page1.headers["x-total-count"] == "3"
    assert by_header.json() == page1.json()
    assert by_header.headers["x-total-count"] == "3"
    assert len(page2.json()) == 1
    for item in page1.json() + page2.json():
        _assert_v1_expert(item)
    seen = {item["id"] for item in page1.json() + page2.json()}
    assert seen == {account["id"] for account in accounts}
    rates = {item["name"]: item["hourly_rate"] for item in page1.json() + page2.json()}
    assert rates == {"Ada": 150, "Grace": 100, "Linus": 80}


async def test_the_same_experts_through_v2_have_the_v2_shape(
    client: AsyncClient, database_url: str
) -> None:
    await _three_experts(client, database_url)

    v2 = await client.get("/api/v2/experts", params={"limit": 2})

    assert set(v2.json()) == {"data", "next_cursor"}
    assert v2.json()["next_cursor"]
    assert "x-total-count" not in v2.headers
    for item in v2.json()["data"]:
        assert "name" not in item
        assert set(item["hourly_rate"]) == {"amount", "currency"}


async def test_v1_expert_profile_by_url_and_header_and_its_v2_successor(
    client: AsyncClient, database_url: str
) -> None:
    ada = (await _three_experts(client, database_url))[0]

    by_url = await client.get(f"/api/v1/experts/{ada['id']}")
    by_accept = await client.get(
        f"/api/experts/{ada['id']}", headers={"Accept": "application/vnd.chainconsult.v1+json"}
    )
    successor = await client.get(by_url.links["successor-version"]["url"])

    assert by_url.status_code == 200, by_url.text
    assert by_url.json() == by_accept.json()
    assert by_url.json()["name"] == "Ada"
    assert by_url.json()["hourly_rate"] == 150
    _assert_v1_expert(by_url.json())
    assert successor.status_code == 200
    assert successor.json()["display_name"] == "Ada"
    assert successor.json()["hourly_rate"] == {"amount": "150.00", "currency": "USD"}


async def test_v1_list_successor_link_answers_200(client: AsyncClient) -> None:
    v1 = await client.get("/api/v1/experts")

    successor = await client.get(v1.links["successor-version"]["url"])

    assert v1.status_code == 200
    assert v1.json() == []
    assert v1.headers["x-total-count"] == "0"
    assert successor.status_code == 200
    assert successor.json() == {"data": [], "next_cursor": None}


async def test_bad_v1_page_numbers_are_422_naming_the_v1_parameter(client: AsyncClient) -> None:
    response = await client.get("/api/v1/experts", params={"per_page": 1000})

    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "per_page"


async def test_v2_has_no_offset_only_cursors(client: AsyncClient, database_url: str) -> None:
    await _three_experts(client, database_url)

    response = await client.get("/api/v2/experts", params={"offset": 2, "limit": 2})

    # An offset is v1's, handled in the v1 layer: v2 reads the first page by cursor.
    assert response.status_code == 200
    assert "x-total-count" not in response.headers
    assert len(response.json()["data"]) == 2
    assert response.json()["next_cursor"] is not None
