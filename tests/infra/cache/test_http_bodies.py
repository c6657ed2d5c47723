"""Cached JSON bodies with ETag, If-None-Match and Cache-Control, on a small app that uses the
helpers the way the directory endpoints do."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, Request
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel
from starlette.responses import Response

from chainconsult.infra.cache import Cache, body_query, cached_json


class Card(BaseModel):
    id: int
    name: str


class CardV2(BaseModel):
    id: int
    name: str
    rating: float


CARD_BODY = body_query("test.card.body", Card, ttl=60)
rows = {1: "Ada"}
runs = 0


def build_app(cache: Cache) -> FastAPI:
    app = FastAPI()

    @app.get("/cards/{card_id}")
    async def card(card_id: int, request: Request) -> Response:
        async def load() -> Card:
            global runs
            runs += 1
            return Card(id=card_id, name=rows[card_id])

        return await cached_json(
            request,
            CARD_BODY,
            cache=cache,
            arguments=[card_id],
            tags=[f"card:{card_id}"],
            load=load,
        )

    return app


@pytest.fixture
async def cards() -> AsyncIterator[tuple[AsyncClient, Cache]]:
    cache = Cache(redis=None, key_prefix="test", memory_max_bytes=1 << 20)
    await cache.start()
    transport = ASGITransport(app=build_app(cache))
    async with AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client, cache
    await cache.close()


async def test_body_carries_etag_and_revalidation_policy(
    cards: tuple[AsyncClient, Cache],
) -> None:
    client, _ = cards
    response = await client.get("/cards/1")

    assert response.status_code == 200
    assert response.json() == {"id": 1, "name": "Ada"}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["etag"].startswith('W/"')
    assert response.headers["cache-control"] == "public, no-cache"


async def test_matching_if_none_match_gets_an_empty_304(cards: tuple[AsyncClient, Cache]) -> None:
    client, _ = cards
    etag = (await client.get("/cards/1")).headers["etag"]

    strong = etag.removeprefix("W/")
    for header in (etag, strong, f'"other", {etag}', "*"):
        again = await client.get("/cards/1", headers={"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == etag

    stale = await client.get("/cards/1", headers={"If-None-Match": '"not-it"'})
    assert stale.status_code == 200


async def test_a_write_changes_the_etag_and_the_old_one_no_longer_matches(
    cards: tuple[AsyncClient, Cache],
) -> None:
    client, cache = cards
    before = await client.get("/cards/1")
    served = runs

    rows[1] = "Ada Lovelace"
    await cache.invalidate(["card:1"])
    after = await client.get("/cards/1", headers={"If-None-Match": before.headers["etag"]})

    assert after.status_code == 200
    assert after.json()["name"] == "Ada Lovelace"
    assert after.headers["etag"] != before.headers["etag"]
    assert runs == served + 1
    rows[1] = "Ada"


async def test_repeated_reads_are_served_from_the_cache(cards: tuple[AsyncClient, Cache]) -> None:
    client, cache = cards
    await cache.invalidate(["card:1"])
    served = runs
    for _ in range(5):
        assert (await client.get("/cards/1")).status_code == 200

    assert runs == served + 1
    assert cache.stats()["test.card.body"].l1_hits >= 4


def test_body_keys_follow_the_shape_of_the_rendered_model() -> None:
    assert body_query("x", Card, ttl=1).key([1]) != body_query("x", CardV2, ttl=1).key([1])
