"""Expert applications: validation, the vetting states, resubmission after a rejection."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient

from tests.helpers import count_rows, login, register
from tests.market import Headers, admin, application_body, notifications, query


async def candidate(client: AsyncClient) -> tuple[dict[str, Any], Headers]:
    account = await register(client, role="expert", name="Candidate")
    return account, await login(client, account["email"])


@pytest.mark.parametrize(
    ("chain", "address"),
    [
        ("ethereum", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
        ("base", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
        ("bitcoin", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
        ("bitcoin", "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297"),
        ("bitcoin", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"),
        ("solana", "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"),
        ("cosmos", "cosmos1hsk6jryyqjfhp5dhc55tc9jtckygx0eph6dd02"),
        ("polkadot", "15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5"),
        ("near", "alice.near"),
        ("sui", "0x" + "ab" * 32),
        ("aptos", "0x1"),
        ("starknet", "0x049d36570d4e46f48e99674bd3fcc84644ddd6b96f7c741b1562b82f9e004dc7"),
    ],
)
async def test_valid_wallets_are_accepted(client: AsyncClient, chain: str, address: str) -> None:
    _, headers = await candidate(client)
    response = await client.post(
        "/api/v2/expert-applications",
        json=application_body(wallet_address=address, wallet_chain=chain),
        headers=headers,
    )
    assert response.status_code == 201, response.text
    assert (response.json()["wallet_address"], response.json()["wallet_chain"]) == (address, chain)


@pytest.mark.parametrize(
    ("chain", "address"),
    [
        ("ethereum", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),  # EIP-55 checksum broken
        ("ethereum", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea"),  # too short
        ("bitcoin", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3"),  # base58check broken
        ("bitcoin", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdx"),  # bech32 checksum broken
        ("solana", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
        ("cosmos", "osmo1hsk6jryyqjfhp5dhc55tc9jtckygx0eph6dd02"),
        ("polkadot", "15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp6"),
        ("near", "Alice..near"),
        ("starknet", "0x" + "f" * 64),  # above the field prime
    ],
)
async def test_invalid_wallets_are_422_and_store_nothing(
    client: AsyncClient, database_url: str, chain: str, address: str
) -> None:
    _, headers = await candidate(client)
    response = await client.post(
        "/api/v2/expert-applications",
        json=application_body(wallet_address=address, wallet_chain=chain),
        headers=headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "#/wallet_address"
    assert count_rows(database_url, "expert_applications") == 0


@pytest.mark.parametrize(
    ("override", "pointer"),
    [
        ({"skills": ["basket-weaving"]}, "#/skills/0"),
        ({"chains": []}, "#/chains"),
        ({"portfolio_links": ["ftp://example.com/x"]}, "#/portfolio_links/0"),
        ({"portfolio_links": ["javascript:alert(1)"]}, "#/portfolio_links/0"),
        ({"hourly_rate": {"amount": "-5", "currency": "USD"}}, "#/hourly_rate/amount"),
        ({"hourly_rate": {"amount": "100", "currency": "DOGE"}}, "#/hourly_rate/currency"),
        ({"years_experience": 200}, "#/years_experience"),
        ({"headline": ""}, "#/headline"),
    ],
)
async def test_bad_application_fields_name_the_field(
    client: AsyncClient, database_url: str, override: dict[str, Any], pointer: str
) -> None:
    _, headers = await candidate(client)
    response = await client.post(
        "/api/v2/expert-applications", json=application_body(**override), headers=headers
    )
    assert response.status_code == 422
    assert pointer in {error.get("pointer") for error in response.json()["errors"]}
    assert count_rows(database_url, "expert_applications") == 0


async def test_rejection_then_resubmission_keeps_every_revision(
    client: AsyncClient, database_url: str
) -> None:
    admin_headers = await admin(client, database_url)
    account, headers = await candidate(client)
    first = (
        await client.post("/api/v2/expert-applications", json=application_body(), headers=headers)
    ).json()
    duplicate = await client.post(
        "/api/v2/expert-applications", json=application_body(), headers=headers
    )
    assert duplicate.status_code == 409

    review = await client.post(
        f"/api/v2/admin/expert-applications/{first['id']}/review", headers=admin_headers
    )
    assert review.json()["status"] == "under_review"
    rejected = await client.post(
        f"/api/v2/admin/expert-applications/{first['id']}/decision",
        json={"decision": "reject", "note": "Add audit reports to the portfolio"},
        headers=admin_headers,
    )
    assert rejected.json()["status"] == "rejected"
    again = await client.post(
        f"/api/v2/admin/expert-applications/{first['id']}/decision",
        json={"decision": "approve", "note": ""},
        headers=admin_headers,
    )
    assert again.status_code == 409
    note = (await notifications(client, headers))[0]
    assert note["payload"] == {
        "application_id": first["id"],
        "decision": "rejected",
        "note": "Add audit reports to the portfolio",
    }
    assert (await client.get(f"/api/v2/experts/{account['id']}")).status_code == 404

    second = await client.post(
        "/api/v2/expert-applications",
        json=application_body(headline="Solidity auditor with published reports"),
        headers=headers,
    )
    assert second.status_code == 201
    assert second.json()["revision"] == 2
    mine = await client.get("/api/v2/expert-applications/me", headers=headers)
    assert [(a["revision"], a["status"]) for a in mine.json()["data"]] == [
        (2, "submitted"),
        (1, "rejected"),
    ]
    assert query(database_url, "SELECT role FROM accounts WHERE id = %s", account["id"]) == [
        ("expert_candidate",)
    ]


async def test_vetting_is_admin_only(client: AsyncClient) -> None:
    _, headers = await candidate(client)
    application = (
        await client.post("/api/v2/expert-applications", json=application_body(), headers=headers)
    ).json()
    listing = await client.get("/api/v2/admin/expert-applications", headers=headers)
    decision = await client.post(
        f"/api/v2/admin/expert-applications/{application['id']}/decision",
        json={"decision": "approve", "note": ""},
        headers=headers,
    )
    client.cookies.clear()  # login left a session cookie; this request is anonymous
    anonymous = await client.post("/api/v2/expert-applications", json=application_body())
    assert (listing.status_code, decision.status_code, anonymous.status_code) == (403, 403, 401)


async def test_vetting_queue_pages_oldest_first(client: AsyncClient, database_url: str) -> None:
    admin_headers = await admin(client, database_url)
    ids = []
    for _ in range(3):
        _, headers = await candidate(client)
        created = await client.post(
            "/api/v2/expert-applications", json=application_body(), headers=headers
        )
        ids.append(created.json()["id"])
    first = await client.get(
        "/api/v2/admin/expert-applications", params={"limit": 2}, headers=admin_headers
    )
    second = await client.get(
        "/api/v2/admin/expert-applications",
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=admin_headers,
    )
    served = [a["id"] for a in first.json()["data"] + second.json()["data"]]
    assert served == ids
    assert second.json()["next_cursor"] is None


async def test_an_expert_updates_the_profile_through_a_new_revision(
    client: AsyncClient, database_url: str
) -> None:
    from tests.market import approved_expert

    admin_headers = await admin(client, database_url)
    expert, headers = await approved_expert(client, admin_headers, headline="Solidity auditor")
    query(
        database_url,
        "UPDATE expert_profiles SET rating_avg = 4.50, rating_count = 2, rating_sum = 9 "
        "WHERE id = %s",
        expert["id"],
    )

    update = await client.post(
        "/api/v2/expert-applications",
        json=application_body(headline="Solidity and Vyper auditor", skills=["vyper"]),
        headers=headers,
    )
    assert update.status_code == 201
    assert update.json()["revision"] == 2
    pending = await client.get(f"/api/v2/experts/{expert['id']}")
    assert pending.json()["headline"] == "Solidity auditor"  # live until approved

    rejected = await client.post(
        f"/api/v2/admin/expert-applications/{update.json()['id']}/decision",
        json={"decision": "reject", "note": "Vyper work not shown"},
        headers=admin_headers,
    )
    assert rejected.status_code == 200
    me = await client.get("/api/v2/auth/me", headers=headers)
    assert me.json()["role"] == "expert"  # a rejected update keeps the approved expert
    third = await client.post(
        "/api/v2/expert-applications",
        json=application_body(headline="Solidity and Vyper auditor", skills=["vyper"]),
        headers=headers,
    )
    await client.post(
        f"/api/v2/admin/expert-applications/{third.json()['id']}/decision",
        json={"decision": "approve", "note": ""},
        headers=admin_headers,
    )

    profile = (await client.get(f"/api/v2/experts/{expert['id']}")).json()
    assert profile["headline"] == "Solidity and Vyper auditor"
    assert profile["skills"] == ["vyper"]
    assert profile["rating"] == {"average": "4.50", "count": 2}
