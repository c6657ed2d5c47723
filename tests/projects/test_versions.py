"""Project requests through API v1: `budget` is one number, lists are numbered pages of the
open public projects; a v1 create is stored as v2 data and reads back through v2."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from httpx import AsyncClient

from tests.market import client_account, project_body, query


def v1_project_body(**overrides: Any) -> dict[str, Any]:
    body = project_body()
    del body["visibility"]
    body["budget"] = 8000
    body.update(overrides)
    return body


async def test_v1_create_is_stored_as_a_range_and_reads_back_through_v2(
    client: AsyncClient, database_url: str
) -> None:
    _, headers = await client_account(client)

    created = await client.post("/api/v1/projects", json=v1_project_body(), headers=headers)

    assert created.status_code == 201, created.text
    v1 = created.json()
    assert v1["budget"] == 8000
    assert "visibility" not in v1
    assert "invited_experts" not in v1
    assert created.headers["api-version"] == "1"
    rows = query(
        database_url,
        "SELECT budget_min, budget_max, budget_currency, visibility FROM projects WHERE id = %s",
        v1["id"],
    )
    assert rows == [(Decimal("8000.00"), Decimal("8000.00"), "USD", "public")]
    v2 = (await client.get(f"/api/v2/projects/{v1['id']}", headers=headers)).json()
    assert {k: Decimal(v) if k != "currency" else v for k, v in v2["budget"].items()} == {
        "min": Decimal(8000),
        "max": Decimal(8000),
        "currency": "USD",
    }
    assert v2["visibility"] == "public"


async def test_v1_create_by_header_gives_the_v1_shape(client: AsyncClient) -> None:
    _, headers = await client_account(client)

    created = await client.post(
        "/api/projects",
        json=v1_project_body(budget=2500.5),
        headers={**headers, "API-Version": "1"},
    )

    assert created.status_code == 201, created.text
    assert created.json()["budget"] == 2500.5
    assert created.headers["api-version"] == "1"


async def test_v1_project_list_is_numbered_pages_of_open_projects(
    client: AsyncClient,
) -> None:
    ids = []
    for index in range(3):
        _, headers = await client_account(client, name=f"Client {index}")
        response = await client.post(
            "/api/v2/projects",
            json=project_body(title=f"Project number {index}"),
            headers=headers,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])

    page1 = await client.get(
        "/api/v1/projects", params={"page": 1, "per_page": 2, "view": "mine"}, headers=headers
    )
    by_header = await client.get(
        "/api/projects", params={"page": 1, "per_page": 2}, headers={**headers, "API-Version": "1"}
    )
    page2 = await client.get("/api/v1/projects", params={"page": 2, "per_page": 2}, headers=headers)
    v2 = await client.get("/api/v2/projects", params={"limit": 2}, headers=headers)

    assert page1.status_code == 200, page1.text
    assert page1.headers["x-total-count"] == "3"
    assert page1.json() == by_header.json()
    items = page1.json() + page2.json()
    # v1 has no `view`: it always lists the open public projects, newest first.
    assert [item["id"] for item in items] == ids[::-1]
    assert all(item["budget"] == 12000 for item in items)
    assert all("visibility" not in item for item in items)
    assert set(v2.json()) == {"data", "next_cursor"}
    assert v2.json()["data"][0]["budget"] == {
        "min": "5000.00",
        "max": "12000.00",
        "currency": "USD",
    }


async def test_v1_validation_errors_name_v1_fields_and_store_nothing(
    client: AsyncClient, database_url: str
) -> None:
    _, headers = await client_account(client)

    bad_budget = await client.post(
        "/api/v1/projects", json=v1_project_body(budget="lots"), headers=headers
    )
    zero_budget = await client.post(
        "/api/v1/projects", json=v1_project_body(budget=0), headers=headers
    )
    short_title = await client.post(
        "/api/v1/projects", json=v1_project_body(title="x"), headers=headers
    )

    assert bad_budget.status_code == 422
    assert bad_budget.json()["errors"][0]["pointer"] == "#/budget"
    assert zero_budget.status_code == 422
    assert {e["pointer"] for e in zero_budget.json()["errors"]} == {"#/budget"}
    assert short_title.status_code == 422
    assert short_title.json()["errors"][0]["pointer"] == "#/title"
    assert short_title.headers["deprecation"].startswith("@")
    assert query(database_url, "SELECT count(*) FROM projects") == [(0,)]


async def test_v1_projects_need_a_login_like_v2(client: AsyncClient) -> None:
    response = await client.get("/api/v1/projects")

    assert response.status_code == 401
    assert response.headers["api-version"] == "1"
    assert response.json()["instance"] == "/api/v1/projects"


async def test_v2_project_lists_have_no_offset(client: AsyncClient) -> None:
    _, headers = await client_account(client)

    response = await client.get(
        "/api/v2/projects", params={"view": "mine", "offset": 0}, headers=headers
    )

    # An offset is v1's, handled in the v1 layer: v2 lists by cursor whatever is sent.
    assert response.status_code == 200
    assert "x-total-count" not in response.headers
    assert response.json() == {"data": [], "next_cursor": None}
