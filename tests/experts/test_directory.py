"""Done-when 2: directory filters and full-text search on a known data set, and keyset
pagination that neither repeats nor skips while experts are added between pages."""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from httpx import AsyncClient

from tests.market import query

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def add_expert(
    database_url: str,
    *,
    name: str,
    headline: str = "Blockchain engineer",
    bio: str = "Builds and reviews smart contracts for production systems.",
    skills: tuple[str, ...] = ("solidity",),
    chains: tuple[str, ...] = ("ethereum",),
    rate: str = "100.00",
    currency: str = "USD",
    rating: str = "0",
    count: int = 0,
    approved_minutes: int = 0,
) -> str:
    """An approved expert straight in the tables: the directory reads only these rows."""
    expert_id = uuid.uuid4()
    # The aggregates must agree (ck_expert_profiles_rating_consistent): round the count up to
    # one whose star total gives exactly this average.
    average = Fraction(Decimal(rating))
    if count:
        count = math.ceil(count / average.denominator) * average.denominator
    query(
        database_url,
        "INSERT INTO accounts (id, email, password_hash, display_name, role, plan, is_active) "
        "VALUES (%s, %s, 'x', %s, 'expert', 'free', true)",
        expert_id,
        f"{expert_id.hex}@example.com",
        name,
    )
    query(
        database_url,
        "INSERT INTO expert_profiles (id, display_name, headline, bio, skills, chains, "
        "hourly_rate_amount, hourly_rate_currency, years_experience, portfolio_links, "
        "approved_at, rating_avg, rating_count, rating_sum) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 5, '{}', %s, %s, %s, %s)",
        expert_id,
        name,
        headline,
        bio,
        list(skills),
        list(chains),
        Decimal(rate),
        currency,
        BASE + dt.timedelta(minutes=approved_minutes),
        Decimal(rating),
        count,
        int(average * count),
    )
    return str(expert_id)


async def names(client: AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/api/v2/experts", params=params)
    assert response.status_code == 200, response.text
    return [item["display_name"] for item in response.json()["data"]]


@pytest.fixture
def known_experts(database_url: str) -> None:
    add_expert(
        database_url,
        name="Alice Auditor",
        headline="Solidity security auditor",
        bio="Audited lending markets and AMMs; formal verification with Certora.",
        skills=("solidity", "smart-contract-audit"),
        chains=("ethereum", "arbitrum"),
        rate="220.00",
        rating="4.90",
        count=10,
        approved_minutes=1,
    )
    add_expert(
        database_url,
        name="Bob Rustacean",
        headline="Rust engineer for Solana programs",
        bio="Anchor programs, validators and MEV searchers written in Rust.",
        skills=("rust", "mev"),
        chains=("solana",),
        rate="180.00",
        rating="4.20",
        count=5,
        approved_minutes=2,
    )
    add_expert(
        database_url,
        name="Carol Cairo",
        headline="StarkNet and zero-knowledge proofs",
        bio="Cairo contracts, STARK provers and zk rollup bridges.",
        skills=("cairo", "zk-proofs", "bridges"),
        chains=("starknet", "ethereum"),
        rate="250.00",
        rating="4.60",
        count=3,
        approved_minutes=3,
    )
    add_expert(
        database_url,
        name="Dan Defi",
        headline="DeFi protocol designer",
        bio="Tokenomics and governance for lending protocols; Solidity and Vyper.",
        skills=("defi", "tokenomics", "solidity", "vyper"),
        chains=("ethereum", "polygon"),
        rate="90.00",
        rating="3.50",
        count=2,
        approved_minutes=4,
    )
    add_expert(
        database_url,
        name="Erin Euro",
        headline="Move developer",
        bio="Sui and Aptos modules; audits of Move code.",
        skills=("move", "smart-contract-audit"),
        chains=("sui", "aptos"),
        rate="120.00",
        currency="EUR",
        approved_minutes=5,
    )


@pytest.mark.usefixtures("known_experts")
async def test_filters_select_the_expected_experts(client: AsyncClient) -> None:
    assert await names(client, skill="solidity") == ["Alice Auditor", "Dan Defi"]
    assert await names(client, skill=["solidity", "vyper"]) == ["Dan Defi"]
    assert await names(client, chain="ethereum") == ["Alice Auditor", "Carol Cairo", "Dan Defi"]
    assert await names(client, chain="solana", skill="rust") == ["Bob Rustacean"]
    assert await names(client, min_rating="4.5") == ["Alice Auditor", "Carol Cairo"]
    assert await names(client, max_rate="180") == ["Bob Rustacean", "Dan Defi"]
    assert await names(client, max_rate="150", currency="EUR") == ["Erin Euro"]
    assert await names(client, skill="smart-contract-audit", min_rating="1") == ["Alice Auditor"]


@pytest.mark.usefixtures("known_experts")
async def test_full_text_search_covers_name_headline_and_bio(client: AsyncClient) -> None:
    assert await names(client, q="auditor") == ["Alice Auditor"]  # name and headline
    assert await names(client, q="rust") == ["Bob Rustacean"]  # stemmed headline and bio
    assert await names(client, q="lending") == ["Alice Auditor", "Dan Defi"]  # bio
    assert await names(client, q="zero-knowledge proofs") == ["Carol Cairo"]
    assert await names(client, q='"formal verification"') == ["Alice Auditor"]
    assert await names(client, q="lending -tokenomics") == ["Alice Auditor"]
    assert await names(client, q="carol") == ["Carol Cairo"]
    assert await names(client, q="quantum") == []


@pytest.mark.usefixtures("known_experts")
async def test_sorts_by_rating_rate_and_newest(client: AsyncClient) -> None:
    assert await names(client, sort="rating") == [
        "Alice Auditor",
        "Carol Cairo",
        "Bob Rustacean",
        "Dan Defi",
        "Erin Euro",
    ]
    assert (await names(client, sort="rate"))[:2] == ["Dan Defi", "Erin Euro"]
    assert await names(client, sort="newest", limit=2) == ["Erin Euro", "Dan Defi"]


@pytest.mark.usefixtures("known_experts")
async def test_bad_filters_are_422_and_bad_cursor_400(client: AsyncClient) -> None:
    unknown_skill = await client.get("/api/v2/experts", params={"skill": "cobol"})
    assert unknown_skill.status_code == 422
    assert unknown_skill.json()["errors"][0]["parameter"] == "skill/0"
    too_high = await client.get("/api/v2/experts", params={"min_rating": "6"})
    assert too_high.status_code == 422
    for control in ("a\x00b", "a\x1bb", "a\u202eb"):
        refused = await client.get("/api/v2/experts", params={"q": control})
        assert refused.status_code == 422, control
        (error,) = refused.json()["errors"]
        assert (error["parameter"], error["type"]) == ("q", "text_character")
    cursor = await client.get("/api/v2/experts", params={"cursor": "not-a-cursor"})
    assert cursor.status_code == 400
    assert cursor.headers["content-type"] == "application/problem+json"
    first = await client.get("/api/v2/experts", params={"sort": "rate", "limit": 1})
    other_sort = await client.get(
        "/api/v2/experts", params={"sort": "rating", "cursor": first.json()["next_cursor"]}
    )
    assert other_sort.status_code == 400


async def test_rate_filters_accept_exactly_what_the_document_says(client: AsyncClient) -> None:
    document = (await client.get("/api/v2/openapi.json")).json()
    parameters = {
        p["name"]: p["schema"] for p in document["paths"]["/api/v2/experts"]["get"]["parameters"]
    }
    (max_rate,) = [
        branch for branch in parameters["max_rate"]["anyOf"] if branch != {"type": "null"}
    ]
    (min_rating,) = [
        branch for branch in parameters["min_rating"]["anyOf"] if branch != {"type": "null"}
    ]

    assert min_rating == {"type": "number", "minimum": 0, "maximum": 5}
    for value, allowed in (("180", True), ("0.5", True), ("5e-324", False), ("", False)):
        assert (re.fullmatch(max_rate["pattern"], value) is not None) == allowed, value
        response = await client.get("/api/v2/experts", params={"max_rate": value})
        assert (response.status_code == 200) == allowed, (value, response.text)
    for value in ("5e-324", "4.5", "0"):
        response = await client.get("/api/v2/experts", params={"min_rating": value})
        assert response.status_code == 200, (value, response.text)
    empty = await client.get("/api/v2/experts", params={"min_rating": ""})
    assert empty.status_code == 422


async def test_unknown_expert_is_404(client: AsyncClient) -> None:
    response = await client.get(f"/api/v2/experts/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["status"] == 404


@pytest.mark.parametrize("sort", ["rating", "rate", "newest"])
async def test_pages_never_repeat_or_skip_while_experts_are_added(
    client: AsyncClient, database_url: str, sort: str
) -> None:
    original = {
        add_expert(
            database_url,
            name=f"Original {i:02d}",
            rate=f"{100 + (i % 5) * 10}.00",  # ties on the sort key: the id breaks them
            rating=f"{3 + (i % 3) * 0.5:.2f}",
            count=1,
            approved_minutes=i % 4,
        )
        for i in range(23)
    }
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"sort": sort, "limit": 5}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/api/v2/experts", params=params)
        assert response.status_code == 200
        body = response.json()
        seen += [item["id"] for item in body["data"]]
        pages += 1
        # Between pages, add experts that sort before, among and after the ones served.
        for j, (rate, rating, minutes) in enumerate(
            [("50.00", "5.00", 10), ("120.00", "4.00", 1), ("500.00", "1.00", -5)]
        ):
            add_expert(
                database_url,
                name=f"Late {pages}-{j}",
                rate=rate,
                rating=rating,
                count=1,
                approved_minutes=minutes,
            )
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 50

    assert len(seen) == len(set(seen)), "an expert was served twice"
    assert original <= set(seen), "an expert present from the start was skipped"
