"""The CachedReadShortcut: a repeat public GET of the directory or a profile is answered from
L1 without running the route, and that answer cannot be told apart from the route's (body,
headers, 304, v1 shape, rate limit, metrics label), nor outlive a write."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from httpx import AsyncClient
from prometheus_client import REGISTRY

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.infra.cache import Cache, etag_of, request_cache
from chainconsult.infra.cache import _shortcut as shortcut_module
from tests.conftest import make_settings
from tests.helpers import serving
from tests.market import admin, approved_expert, client_account

# Differ between any two responses, whoever answers.
PER_RESPONSE = {"date", "x-request-id", "ratelimit"}


@asynccontextmanager
async def counted_app(settings: Settings) -> AsyncIterator[tuple[AsyncClient, Callable[[], int]]]:
    """A client of the real app, and how many times a route resolved its cache dependency
    (the directory routes do, once per run of the route)."""
    app: FastAPI = create_app(settings)
    runs = 0

    async def counting_cache(request: Request) -> Cache:
        nonlocal runs
        runs += 1
        return await request_cache(request)

    app.dependency_overrides[request_cache] = counting_cache
    async with serving(app) as client:
        yield client, lambda: runs


def comparable(response: httpx.Response) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers.multi_items() if k not in PER_RESPONSE)


async def test_repeat_public_read_is_answered_without_the_route_and_identically(
    settings: Settings, database_url: str
) -> None:
    async with counted_app(settings) as (client, route_runs):
        admins = await admin(client, database_url)
        expert, _ = await approved_expert(client, admins, name="Ada")
        client.cookies.clear()  # the logins above left their session cookies
        for path in ("/api/v2/experts?sort=rating", f"/api/v2/experts/{expert['id']}"):
            before = route_runs()
            first = await client.get(path)
            second = await client.get(path)
            third = await client.get(path)

            assert route_runs() == before + 1, path
            assert first.status_code == second.status_code == third.status_code == 200
            assert first.content == second.content == third.content
            assert comparable(first) == comparable(second) == comparable(third)
            assert second.headers["etag"] == first.headers["etag"]
            assert second.headers["cache-control"] == "public, no-cache"
            assert second.headers["content-security-policy"].startswith("default-src 'none'")
            assert second.headers["api-version"] == "2"
            assert second.headers["x-request-id"] != first.headers["x-request-id"]
            assert "ratelimit" in second.headers


async def test_shortcut_answers_304_to_a_matching_if_none_match(
    settings: Settings, database_url: str
) -> None:
    async with counted_app(settings) as (client, route_runs):
        admins = await admin(client, database_url)
        await approved_expert(client, admins, name="Ada")
        client.cookies.clear()
        first = await client.get("/api/v2/experts")
        runs = route_runs()

        fresh = await client.get(
            "/api/v2/experts", headers={"If-None-Match": first.headers["etag"]}
        )
        stale = await client.get("/api/v2/experts", headers={"If-None-Match": 'W/"other"'})

        assert route_runs() == runs
        assert fresh.status_code == 304
        assert fresh.content == b""
        assert fresh.headers["etag"] == first.headers["etag"]
        assert fresh.headers["cache-control"] == "public, no-cache"
        assert stale.status_code == 200
        assert stale.content == first.content


async def test_requests_with_credentials_take_the_route(
    settings: Settings, database_url: str
) -> None:
    async with counted_app(settings) as (client, route_runs):
        _, auth = await client_account(client)
        client.cookies.clear()
        anonymous = await client.get("/api/v2/experts")
        runs = route_runs()

        with_token = await client.get("/api/v2/experts", headers=auth)
        with_cookie = await client.get("/api/v2/experts", headers={"Cookie": "theme=dark"})

        assert route_runs() == runs + 2
        assert with_token.content == with_cookie.content == anonymous.content


async def test_a_write_is_seen_by_the_next_repeat_read(
    settings: Settings, database_url: str
) -> None:
    async with counted_app(settings) as (client, route_runs):
        admins = await admin(client, database_url)
        ada, _ = await approved_expert(client, admins, name="Ada")
        client.cookies.clear()
        for _ in range(2):
            listed = await client.get("/api/v2/experts")
            profile = await client.get(f"/api/v2/experts/{ada['id']}")
        assert [item["id"] for item in listed.json()["data"]] == [ada["id"]]
        runs = route_runs()

        grace, _ = await approved_expert(client, admins, name="Grace")
        client.cookies.clear()
        relisted = await client.get("/api/v2/experts")
        again = await client.get(f"/api/v2/experts/{ada['id']}")

        assert {item["id"] for item in relisted.json()["data"]} == {ada["id"], grace["id"]}
        assert relisted.headers["etag"] != listed.headers["etag"]
        assert route_runs() > runs  # the invalidated list went back to the route
        assert again.json()["id"] == profile.json()["id"]


async def test_v1_profile_keeps_its_shape_and_headers_through_the_shortcut(
    settings: Settings, database_url: str
) -> None:
    async with counted_app(settings) as (client, route_runs):
        admins = await admin(client, database_url)
        expert, _ = await approved_expert(client, admins, name="Ada")
        client.cookies.clear()
        path = f"/api/v1/experts/{expert['id']}"
        first = await client.get(path)
        runs = route_runs()

        second = await client.get(path)
        by_header = await client.get(f"/api/experts/{expert['id']}", headers={"API-Version": "1"})

        assert route_runs() == runs
        assert second.status_code == by_header.status_code == 200
        assert second.json() == first.json() == by_header.json()
        assert "name" in second.json()
        assert "display_name" not in second.json()
        assert comparable(second) == comparable(first)
        assert second.headers["deprecation"].startswith("@")
        assert "successor-version" in second.headers["link"]
        assert by_header.headers["vary"] == "API-Version, Accept, Origin"


async def test_shortcut_answers_count_against_the_rate_limit(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url, tmp_path, REDIS_URL=None, RATE_LIMIT_ANONYMOUS="3/minute"
    )
    async with counted_app(settings) as (client, route_runs):
        responses = [await client.get("/api/v2/experts") for _ in range(4)]

    assert route_runs() == 1
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["ratelimit"].split(";t=")[0] for r in responses[:3]] == [
        f'"anonymous";r={left}' for left in (2, 1, 0)
    ]
    assert responses[2].headers["ratelimit-policy"] == '"anonymous";q=3;w=60'
    assert responses[3].headers["content-type"] == "application/problem+json"
    assert int(responses[3].headers["retry-after"]) > 0


def _requests(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "chainconsult_http_requests_total", {"method": "GET", "route": route, "status": status}
    )
    return value or 0.0


async def test_shortcut_answers_are_counted_under_the_route_template(
    settings: Settings, database_url: str
) -> None:
    async with counted_app(settings) as (client, route_runs):
        admins = await admin(client, database_url)
        expert, _ = await approved_expert(client, admins, name="Ada")
        client.cookies.clear()
        counts: dict[str, Any] = {}
        runs = route_runs()
        for route, path in (
            ("/api/v2/experts", "/api/v2/experts?limit=5"),
            ("/api/v2/experts/{expert_id}", f"/api/v2/experts/{expert['id']}"),
        ):
            before = _requests(route, "200"), _requests(route, "304")
            etag = (await client.get(path)).headers["etag"]
            await client.get(path)
            await client.get(path, headers={"If-None-Match": etag})
            counts[route] = (
                _requests(route, "200") - before[0],
                _requests(route, "304") - before[1],
            )
        shortcut_answers = 4 - (route_runs() - runs)

    assert shortcut_answers == 2
    assert counts == {"/api/v2/experts": (2, 1), "/api/v2/experts/{expert_id}": (2, 1)}


async def test_v1_answers_are_counted_under_the_v2_route_template(
    settings: Settings, database_url: str
) -> None:
    async with counted_app(settings) as (client, route_runs):
        admins = await admin(client, database_url)
        expert, _ = await approved_expert(client, admins, name="Ada")
        client.cookies.clear()
        path = f"/api/v1/experts/{expert['id']}"
        labels = {}
        for answer in ("route", "shortcut"):
            runs = route_runs()
            before = {
                (s.labels["route"], s.labels["status"]): s.value
                for metric in REGISTRY.collect()
                if metric.name == "chainconsult_http_requests"
                for s in metric.samples
                if s.name.endswith("_total") and s.labels["method"] == "GET"
            }
            assert (await client.get(path)).status_code == 200
            after = {
                (s.labels["route"], s.labels["status"]): s.value
                for metric in REGISTRY.collect()
                if metric.name == "chainconsult_http_requests"
                for s in metric.samples
                if s.name.endswith("_total") and s.labels["method"] == "GET"
            }
            labels[answer] = sorted(key for key in after if after[key] != before.get(key, 0.0))
            assert (route_runs() > runs) == (answer == "route")

    assert labels["route"] == labels["shortcut"] == [("/api/v2/experts/{expert_id}", "200")]


async def test_etag_is_hashed_once_per_cached_entry(
    settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Repeat hits reuse the validator worked out for their L1 entry; a new entry (after a
    write) gets its own."""
    hashed: list[bytes] = []

    def counting_etag_of(body: bytes) -> str:
        hashed.append(body)
        return etag_of(body)

    monkeypatch.setattr(shortcut_module, "etag_of", counting_etag_of)
    async with counted_app(settings) as (client, _):
        admins = await admin(client, database_url)
        await approved_expert(client, admins, name="Ada")
        client.cookies.clear()
        first = await client.get("/api/v2/experts")  # through the route
        repeats = [await client.get("/api/v2/experts") for _ in range(4)]

        assert len(hashed) == 1
        assert {r.headers["etag"] for r in repeats} == {first.headers["etag"]}
        assert hashed[0] == first.content

        await approved_expert(client, admins, name="Grace")
        client.cookies.clear()
        await client.get("/api/v2/experts")  # the route refills L1
        renewed = [await client.get("/api/v2/experts") for _ in range(3)]

        assert len(hashed) == 2
        assert {r.headers["etag"] for r in renewed} == {etag_of(renewed[0].content)}
        assert renewed[0].headers["etag"] != first.headers["etag"]
