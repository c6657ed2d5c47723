"""API versions on the real application: negotiation, the v1 lifecycle headers, usage metrics,
the per-version OpenAPI documents and the generated migration guide."""

from __future__ import annotations

import datetime as dt
import re
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import http_sf
import pytest
from httpx import AsyncClient
from openapi_spec_validator import validate
from prometheus_client import REGISTRY

from chainconsult.api_versions import migration_guide
from chainconsult.infra.versioning import ApiVersionMiddleware, V1Lifecycle
from tests.helpers import PASSWORD, register
from tests.infra.versioning.widgets import SURFACE

REPO = Path(__file__).resolve().parents[3]


async def _login(client: AsyncClient, path: str, **headers: str) -> Any:
    return await client.post(
        path, json={"email": "ada@example.com", "password": PASSWORD}, headers=headers
    )


async def test_v1_login_by_url_header_and_accept_returns_a_token(client: AsyncClient) -> None:
    await register(client, email="ada@example.com")

    responses = [
        await _login(client, "/api/v1/auth/login"),
        await _login(client, "/api/auth/login", **{"API-Version": "1"}),
        await _login(client, "/api/auth/login", accept="application/vnd.chainconsult.v1+json"),
    ]

    for response in responses:
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"access_token", "token_type", "expires_in"}
        assert response.headers["api-version"] == "1"
        assert response.headers["deprecation"].startswith("@")
    me = await client.get(
        "/api/v2/auth/me",
        headers={"Authorization": f"Bearer {responses[0].json()['access_token']}"},
    )
    assert me.json()["email"] == "ada@example.com"


async def test_unversioned_path_defaults_to_v2(client: AsyncClient) -> None:
    await register(client, email="ada@example.com")

    by_default = await _login(client, "/api/auth/login")
    by_header = await _login(client, "/api/auth/login", **{"API-Version": "2"})

    for response in (by_default, by_header):
        assert response.status_code == 200
        assert response.headers["api-version"] == "2"
        assert {"API-Version", "Accept"} <= {v.strip() for v in response.headers["vary"].split(",")}
        assert "deprecation" not in response.headers


async def test_every_api_response_names_its_version(client: AsyncClient) -> None:
    v2 = await client.get("/api/v2/auth/me")
    health = await client.get("/api/health")

    assert v2.status_code == 401
    assert v2.headers["api-version"] == "2"
    assert health.headers["api-version"] == "2"
    assert health.headers["content-type"] == "application/health+json"


async def test_v1_headers_are_standard_and_point_at_a_live_successor(
    client: AsyncClient, settings: Any
) -> None:
    await register(client, email="ada@example.com")

    response = await _login(client, "/api/v1/auth/login")

    deprecated_at = http_sf.parse(response.headers["deprecation"].encode(), tltype="item")
    assert isinstance(deprecated_at, tuple)
    assert isinstance(deprecated_at[0], dt.datetime)
    assert deprecated_at[0] == settings.versioning.deprecated_at()
    sunset = parsedate_to_datetime(response.headers["sunset"])
    assert response.headers["sunset"].endswith(" GMT")
    assert sunset >= deprecated_at[0]
    assert sunset == settings.versioning.sunset_at()
    links = response.links
    assert links["successor-version"]["url"] == "/api/v2/auth/login"
    assert links["deprecation"]["url"] == "/api/v1/migration-guide"

    successor = await _login(client, links["successor-version"]["url"])
    guide = await client.get(links["deprecation"]["url"])
    assert successor.status_code == 200
    assert successor.headers["api-version"] == "2"
    assert guide.status_code == 200
    assert guide.headers["content-type"].startswith("text/markdown")
    assert guide.text == migration_guide()


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/auth/me", {"API-Version": "3"}),
        ("/api/auth/me", {"API-Version": "0"}),
        ("/api/auth/me", {"API-Version": "two"}),
        ("/api/auth/me", {"API-Version": "1.5"}),
        ("/api/auth/me", {"API-Version": ""}),
        ("/api/auth/me", {"Accept": "application/vnd.chainconsult.v3+json"}),
        ("/api/auth/me", {"Accept": "application/vnd.chainconsult+json"}),
        ("/api/v3/auth/me", {}),
        ("/api/v0/auth/me", {}),
        # Beyond int()'s 4,300 digits.
        ("/api/v" + "1" * 4301 + "/auth/me", {}),
        ("/api/auth/me", {"Accept": "application/vnd.chainconsult.v" + "9" * 5000 + "+json"}),
    ],
)
async def test_unknown_or_malformed_version_is_a_400_naming_the_supported_ones(
    client: AsyncClient, path: str, headers: dict[str, str]
) -> None:
    response = await client.get(path, headers=headers)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["supported_versions"] == ["1", "2"]
    assert "1, 2" in problem["detail"]
    assert problem["request_id"] == response.headers["x-request-id"]


async def test_v1_answers_404_and_405_for_what_v1_never_had(client: AsyncClient) -> None:
    unknown = await client.post("/api/v1/auth/register", json={})
    wrong_method = await client.get("/api/v1/auth/login")

    assert unknown.status_code == 404
    assert unknown.links["successor-version"]["url"] == "/api/v2/auth/register"
    assert unknown.headers["api-version"] == "1"
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert wrong_method.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "headers", "status", "successor"),
    [
        ("/api/v1/experts/中文", {}, 422, "/api/v2/experts/%E4%B8%AD%E6%96%87"),
        ("/api/experts/ü€", {"API-Version": "1"}, 422, "/api/v2/experts/%C3%BC%E2%82%AC"),
        ("/api/v1/项目", {}, 404, "/api/v2/%E9%A1%B9%E7%9B%AE"),
        # Decoded, the path holds CR LF and ">": they must not end the header or the URI.
        ("/api/v1/experts/a%3E%0D%0AX-Evil:%201", {}, 422, "/api/v2/experts/a%3E%0D%0AX-Evil:%201"),
    ],
)
async def test_v1_path_outside_latin1_gets_a_problem_and_a_percent_encoded_successor_link(
    client: AsyncClient, path: str, headers: dict[str, str], status: int, successor: str
) -> None:
    response = await client.get(path, headers=headers)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert response.links["successor-version"]["url"] == successor
    assert "x-evil" not in response.headers
    assert response.headers["link"].isascii()


def _v1_count(route: str, client_label: str) -> float:
    value = REGISTRY.get_sample_value(
        "chainconsult_api_v1_requests_total",
        {"method": "POST", "route": route, "client": client_label},
    )
    return value or 0.0


async def test_v1_usage_is_counted_per_route_and_client(client: AsyncClient) -> None:
    await register(client, email="ada@example.com")
    before = _v1_count("/api/v1/auth/login", "acme-sdk")

    await _login(client, "/api/v1/auth/login", **{"User-Agent": "Acme-SDK/1.2 (python)"})
    await _login(client, "/api/auth/login", **{"User-Agent": "acme-sdk/1.3", "API-Version": "1"})
    await _login(client, "/api/v2/auth/login", **{"User-Agent": "acme-sdk/2.0"})

    assert _v1_count("/api/v1/auth/login", "acme-sdk") == before + 2


def test_client_labels_stay_bounded() -> None:
    middleware = ApiVersionMiddleware(
        lambda scope, receive, send: None,  # type: ignore[arg-type, return-value]
        surface=SURFACE,
        lifecycle=V1Lifecycle(dt.datetime.now(dt.UTC), dt.datetime.now(dt.UTC)),
        max_body_bytes=1024,
        max_client_labels=2,
    )

    def label(agent: bytes) -> str:
        return middleware._client_label({"headers": [(b"user-agent", agent)]})

    assert [label(b"one/1"), label(b"two/1"), label(b"three/1"), label(b"one/2")] == [
        "one",
        "two",
        "other",
        "one",
    ]
    assert middleware._client_label({"headers": []}) == "unknown"


def _schema_names(document: dict[str, Any]) -> set[str]:
    return set(document.get("components", {}).get("schemas", {}))


async def test_each_openapi_document_is_valid_and_lists_only_its_version(
    client: AsyncClient,
) -> None:
    v1 = (await client.get("/api/v1/openapi.json")).json()
    v2 = (await client.get("/api/v2/openapi.json")).json()
    by_header = (await client.get("/api/openapi.json", headers={"API-Version": "1"})).json()

    validate(v1)
    validate(v2)
    assert by_header == v1
    assert set(v1["paths"]) == {
        "/api/v1/auth/login",
        "/api/v1/health",
        "/api/v1/experts",
        "/api/v1/experts/{expert_id}",
        "/api/v1/projects",
    }
    assert set(v1["paths"]["/api/v1/projects"]) == {"get", "post"}
    assert all(op["deprecated"] for item in v1["paths"].values() for op in item.values())
    assert all(name.endswith("V1") for name in _schema_names(v1))
    assert not any(name.endswith("V1") for name in _schema_names(v2))
    assert not any(path.startswith("/api/v1") for path in v2["paths"])
    assert {"/api/v2/auth/login", "/api/v2/experts", "/api/v2/projects"} <= set(v2["paths"])

    v1_expert = v1["components"]["schemas"]["ExpertSummaryV1"]["properties"]
    v2_expert = v2["components"]["schemas"]["ExpertSummary"]["properties"]
    assert "name" in v1_expert
    assert "display_name" not in v1_expert
    assert v1_expert["hourly_rate"]["anyOf"][0]["type"] == "integer"
    assert "display_name" in v2_expert
    assert v2_expert["hourly_rate"]["$ref"].startswith("#/components/schemas/Money")
    v1_project = v1["components"]["schemas"]["ProjectRequestV1"]["properties"]
    assert v1_project["budget"]["type"] == "number"
    assert "visibility" not in v1_project
    v2_budget = v2["components"]["schemas"]["ProjectRequest"]["properties"]["budget"]
    assert v2_budget["$ref"].startswith("#/components/schemas/Budget")
    v1_list = v1["paths"]["/api/v1/experts"]["get"]
    v2_list = v2["paths"]["/api/v2/experts"]["get"]
    assert {"page", "per_page"} <= {p["name"] for p in v1_list["parameters"]}
    assert not {"cursor", "limit", "offset"} & {p["name"] for p in v1_list["parameters"]}
    assert {"cursor", "limit"} <= {p["name"] for p in v2_list["parameters"]}
    assert not {"page", "per_page", "offset"} & {p["name"] for p in v2_list["parameters"]}
    assert "X-Total-Count" in v1_list["responses"]["200"]["headers"]


async def test_docs_pages_load_their_own_version(client: AsyncClient) -> None:
    v1 = await client.get("/api/v1/docs")
    v2 = await client.get("/api/v2/docs")

    assert v1.status_code == v2.status_code == 200
    # The document URL is relative to the page, so it holds under any root_path.
    for page, path in ((v1, "/api/v1/docs"), (v2, "/api/v2/docs")):
        documents = re.findall(r"url: '([^']+)'", page.text)
        assert [urljoin(path, url) for url in documents] == [path.replace("docs", "openapi.json")]
    assert "API v1 (deprecated)" in v1.text
    assert v1.headers["deprecation"].startswith("@")


def test_committed_migration_guide_is_up_to_date() -> None:
    committed = (REPO / "docs" / "api-versions.md").read_text()

    assert committed == migration_guide(), "docs/api-versions.md is stale: run `make api-guide`"


async def test_v1_pages_end_where_the_document_says(client: AsyncClient) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    parameters = document["paths"]["/api/v1/experts"]["get"]["parameters"]
    last_page = next(p for p in parameters if p["name"] == "page")["schema"]["maximum"]

    deepest = await client.get("/api/v1/experts", params={"page": last_page, "per_page": 100})
    beyond = await client.get("/api/v1/experts", params={"page": last_page + 1})

    assert deepest.status_code == 200, deepest.text
    assert deepest.json() == []
    assert beyond.status_code == 422
    assert beyond.json()["errors"][0]["parameter"] == "page"


async def test_v1_budget_is_documented_with_the_bounds_of_a_v2_amount(
    client: AsyncClient,
) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    budget = document["components"]["schemas"]["ProjectRequestV1"]["properties"]["budget"]
    await register(client, email="ada@example.com")
    token = (await _login(client, "/api/v1/auth/login")).json()["access_token"]
    project = {
        "title": "Audit our lending pool",
        "description": "Two contracts, about 900 lines of Solidity in total.",
        "chains": ["ethereum"],
        "skills": ["solidity"],
        "deadline": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
    }

    assert budget["exclusiveMinimum"] == 0
    assert budget["maximum"] == 9999999999.99
    assert budget["multipleOf"] == 0.01
    for outside in (0, 0.001, 10_000_000_000):
        response = await client.post(
            "/api/v1/projects",
            json={**project, "budget": outside},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 422, (outside, response.text)
        assert {e["pointer"] for e in response.json()["errors"]} == {"#/budget"}
    created = await client.post(
        "/api/v1/projects",
        json={**project, "budget": 9999999999.99},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["budget"] == 9999999999.99
