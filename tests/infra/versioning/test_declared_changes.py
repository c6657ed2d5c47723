"""Every kind of declared change, end to end through the versioning middleware: v1 requests are
converted up to the one v2 handler, its responses and errors down to v1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from openapi_spec_validator import validate

from tests.infra.versioning.widgets import MAX_BODY, widgets_app

V1_WIDGET = {"name": "Audit kit", "hourly_rate": 150, "budget": 5000}


@pytest.fixture
async def widgets() -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=widgets_app(), client=("127.0.0.1", 50001))
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def _create_v2(client: AsyncClient, name: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "display_name": name,
        "rate": {"amount": "120.00", "currency": "USD"},
        "budget": {"min": "1000", "max": "2500.50", "currency": "USD"},
        "visibility": "invite_only",
        **overrides,
    }
    response = await client.post("/api/v2/widgets", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_v1_create_is_stored_as_v2_and_reads_back_through_both(
    widgets: AsyncClient,
) -> None:
    created = await widgets.post("/api/v1/widgets", json=V1_WIDGET)

    assert created.status_code == 201, created.text
    v1 = created.json()
    assert v1 == {**V1_WIDGET, "id": v1["id"]}
    assert created.headers["api-version"] == "1"

    v2 = (await widgets.get(f"/api/v2/widgets/{v1['id']}")).json()
    assert v2["display_name"] == "Audit kit"
    assert v2["rate"] == {"amount": "150", "currency": "USD"}
    assert v2["budget"] == {"min": "5000", "max": "5000", "currency": "USD"}
    assert v2["visibility"] == "public"
    assert "name" not in v2
    assert "hourly_rate" not in v2

    again = await widgets.get(f"/api/v1/widgets/{v1['id']}")
    assert again.json() == v1


async def test_v2_data_reads_in_the_v1_shape(widgets: AsyncClient) -> None:
    widget = await _create_v2(widgets, "Bridge review", rate={"amount": "99.50", "currency": "USD"})

    v1 = (await widgets.get(f"/api/v1/widgets/{widget['id']}")).json()

    # Whole dollars rounded half up; the range shows its upper bound; v2-only fields hidden.
    assert v1 == {"id": widget["id"], "name": "Bridge review", "hourly_rate": 100, "budget": 2500.5}


async def test_v1_shows_null_for_money_in_another_currency(widgets: AsyncClient) -> None:
    widget = await _create_v2(
        widgets,
        "Euro work",
        rate={"amount": "80.00", "currency": "EUR"},
        budget={"min": "1", "max": "2", "currency": "EUR"},
    )

    v1 = (await widgets.get(f"/api/v1/widgets/{widget['id']}")).json()

    assert v1["hourly_rate"] is None
    assert v1["budget"] is None


async def test_v1_list_is_a_bare_page_with_the_total_in_a_header(widgets: AsyncClient) -> None:
    names = [f"w{index}" for index in range(5)]
    for name in names:
        await _create_v2(widgets, name)

    # v1 never had `order`: whatever a v1 caller sends, it gets v1's order (oldest first).
    page2 = await widgets.get(
        "/api/v1/widgets", params={"page": 2, "per_page": 2, "order": "newest"}
    )
    past_end = await widgets.get("/api/v1/widgets", params={"page": 9, "per_page": 2})
    v2 = await widgets.get("/api/v2/widgets", params={"limit": 2})

    assert page2.status_code == 200
    assert [item["name"] for item in page2.json()] == names[2:4]
    assert page2.headers["x-total-count"] == "5"
    assert past_end.json() == []
    assert past_end.headers["x-total-count"] == "5"
    assert set(v2.json()) == {"data", "next_cursor", "total"}
    assert "x-total-count" not in v2.headers


@pytest.mark.parametrize(
    ("params", "parameter"),
    [({"per_page": "0"}, "per_page"), ({"per_page": "500"}, "per_page"), ({"page": "x"}, "page")],
)
async def test_bad_v1_paging_is_a_422_naming_the_v1_parameter(
    widgets: AsyncClient, params: dict[str, str], parameter: str
) -> None:
    response = await widgets.get("/api/v1/widgets", params=params)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["deprecation"].startswith("@")
    assert response.json()["errors"][0]["parameter"] == parameter


async def test_v1_validation_errors_point_at_v1_field_names(widgets: AsyncClient) -> None:
    missing_name = await widgets.post("/api/v1/widgets", json={"hourly_rate": 10, "budget": 100})
    fractional_rate = await widgets.post("/api/v1/widgets", json={**V1_WIDGET, "hourly_rate": 1.5})
    bad_budget = await widgets.post("/api/v1/widgets", json={**V1_WIDGET, "budget": "lots"})

    assert missing_name.status_code == 422
    assert missing_name.json()["errors"][0]["pointer"] == "#/name"
    assert missing_name.json()["instance"] == "/api/v1/widgets"
    assert fractional_rate.status_code == 422
    assert fractional_rate.json()["errors"][0]["pointer"] == "#/hourly_rate"
    assert bad_budget.status_code == 422
    assert bad_budget.json()["errors"][0]["pointer"] == "#/budget"
    listing = await widgets.get("/api/v2/widgets")
    assert listing.json()["total"] == 0


async def test_v1_body_guards_answer_with_v1_headers(widgets: AsyncClient) -> None:
    too_large = await widgets.post(
        "/api/v1/widgets",
        content=b'{"name": "' + b"x" * MAX_BODY + b'"}',
        headers={"content-type": "application/json"},
    )
    not_json = await widgets.post(
        "/api/v1/widgets", content=b"name=x", headers={"content-type": "text/plain"}
    )
    malformed = await widgets.post(
        "/api/v1/widgets", content=b"{nope", headers={"content-type": "application/json"}
    )

    assert too_large.status_code == 413
    assert not_json.status_code == 415
    assert malformed.status_code == 400
    for response in (too_large, not_json, malformed):
        assert response.headers["api-version"] == "1"
        assert response.headers["sunset"]
        assert response.json()["instance"] == "/api/v1/widgets"


async def test_v1_by_header_and_accept_is_the_same_as_by_url(widgets: AsyncClient) -> None:
    widget = await _create_v2(widgets, "Same")
    path = f"/widgets/{widget['id']}"

    by_url = await widgets.get(f"/api/v1{path}")
    by_header = await widgets.get(f"/api{path}", headers={"API-Version": "1"})
    by_accept = await widgets.get(
        f"/api{path}", headers={"Accept": "application/vnd.chainconsult.v1+json"}
    )
    default = await widgets.get(f"/api{path}")

    assert by_url.json() == by_header.json() == by_accept.json()
    assert by_header.headers["vary"] == "API-Version, Accept"
    assert default.json() == widget
    assert default.headers["api-version"] == "2"


async def test_unknown_widget_is_a_v1_404_problem(widgets: AsyncClient) -> None:
    response = await widgets.get("/api/v1/widgets/00000000-0000-0000-0000-000000000000")

    assert response.status_code == 404
    assert response.json()["instance"] == "/api/v1/widgets/00000000-0000-0000-0000-000000000000"
    assert response.headers["api-version"] == "1"


async def test_v1_document_of_the_widgets_lists_v1_shapes_only(widgets: AsyncClient) -> None:
    v1 = (await widgets.get("/api/v1/openapi.json")).json()
    v2 = (await widgets.get("/api/v2/openapi.json")).json()

    validate(v1)
    validate(v2)
    listing = v1["paths"]["/api/v1/widgets"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"page", "per_page"}
    assert "X-Total-Count" in listing["responses"]["200"]["headers"]
    page_schema = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert page_schema["type"] == "array"
    widget_v1 = v1["components"]["schemas"]["WidgetV1"]
    assert set(widget_v1["properties"]) == {"id", "name", "hourly_rate", "budget"}
    create_v1 = v1["components"]["schemas"]["WidgetInV1"]
    assert create_v1["properties"]["hourly_rate"]["type"] == "integer"
    assert set(create_v1["required"]) == {"name", "hourly_rate", "budget"}
    assert {"Money", "Budget", "Widget", "WidgetIn"}.isdisjoint(v1["components"]["schemas"])
    v2_listing = v2["paths"]["/api/v2/widgets"]["get"]
    assert {p["name"] for p in v2_listing["parameters"]} == {"limit", "cursor", "order"}
    assert not any(name.endswith("V1") for name in v2["components"]["schemas"])
