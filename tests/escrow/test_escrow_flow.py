"""End to end through the API on the development chain: fund two milestones, release one,
dispute the other and resolve it 70/30; the chain's balances match the database's."""

from __future__ import annotations

import uuid
from decimal import Decimal

from chainconsult.escrow.watcher import reconcile, send_resolution
from chainconsult.infra.chain.rpc import ChainClient
from chainconsult.infra.monitoring.metrics import escrow_reconciliation_differences
from tests.escrow.conftest import ARBITER_FEE_BPS, FEE_BPS, Platform
from tests.escrow.scenario import balance, milestone_rows, mint, planned_deal, sign_and_send
from tests.market import notifications, query

UNITS = [3_000_000_000, 6_000_000_000]  # 3,000.00 and 6,000.00 USDC (6 decimals)


async def test_fund_release_dispute_resolve_with_balances_matching_the_database(
    platform: Platform, database_url: str
) -> None:
    chain, http = platform.chain, platform.http
    deal = await planned_deal(platform, database_url, wallet=chain.expert)
    first, second = deal.milestone_ids

    funding = await http.post(f"/api/v2/projects/{deal.project_id}/escrow", headers=deal.client)
    assert funding.status_code == 200, funding.text
    body = funding.json()
    assert (body["chain_id"], body["contract"], body["token"]) == (
        1337,
        platform.escrow.address,
        "USDC",
    )
    assert body["amount_units"] == str(sum(UNITS))
    assert len(body["transactions"]) == 3  # approve + one deposit per milestone

    mint(platform, chain.client, sum(UNITS))
    who = [
        chain.client.address,
        chain.expert.address,
        chain.fee_recipient.address,
        chain.arbiter.address,
    ]
    before = [balance(platform, address) for address in who]
    sign_and_send(platform, chain.client, body["transactions"])

    # ESCROW_CONFIRMATIONS=2: the last deposit, in the newest block, is not confirmed yet.
    await platform.follow()
    assert [m["status"] for m in milestone_rows(database_url, deal.project_id)] == [
        "funded",
        "draft",
    ]
    chain.rpc("evm_mine")
    await platform.follow()
    rows = milestone_rows(database_url, deal.project_id)
    assert [m["status"] for m in rows] == ["funded", "funded"]
    assert [int(m["amount_units"]) for m in rows] == UNITS
    assert {m["depositor_address"] for m in rows} == {chain.client.address}

    # The client releases the first milestone.
    release = await http.post(f"/api/v2/milestones/{first}/release", headers=deal.client)
    assert release.status_code == 200, release.text
    sign_and_send(platform, chain.client, release.json()["transactions"])
    # The expert disputes the second.
    dispute = await http.post(
        f"/api/v2/milestones/{second}/dispute",
        json={"reason": "The audit report was delivered as agreed."},
        headers=deal.expert,
    )
    assert dispute.status_code == 200, dispute.text
    sign_and_send(platform, chain.expert, dispute.json()["transactions"])
    chain.rpc("evm_mine")
    await platform.follow()
    assert [m["status"] for m in milestone_rows(database_url, deal.project_id)] == [
        "released",
        "disputed",
    ]

    # The admin awards 70 % to the expert; the job sends the arbiter's transaction.
    resolution = await http.post(
        f"/api/v2/admin/milestones/{second}/resolution",
        json={"expert_share_bps": 7000, "note": "Most of the audit was delivered."},
        headers=deal.admin,
    )
    assert resolution.status_code == 202, resolution.text
    (job,) = query(
        database_url,
        "SELECT args->>'milestone_id' FROM procrastinate_jobs "
        "WHERE task_name = 'escrow.send_resolution'",
    )
    assert job == (second,)
    client = ChainClient(chain.url)
    try:
        tx_hash = await send_resolution(
            platform.sessionmaker, platform.settings.escrow, client, uuid.UUID(second)
        )
        # Run again (a retried job): the known transaction is not sent a second time.
        assert (
            await send_resolution(
                platform.sessionmaker, platform.settings.escrow, client, uuid.UUID(second)
            )
            == f"pending: {tx_hash}"
        )
    finally:
        await client.close()
    chain.rpc("evm_mine")
    await platform.follow()

    rows = milestone_rows(database_url, deal.project_id)
    assert [m["status"] for m in rows] == ["released", "resolved"]
    released, resolved = rows
    fee = UNITS[0] * FEE_BPS // 10_000
    assert (int(released["payee_units"]), int(released["platform_fee_units"])) == (
        UNITS[0] - fee,
        fee,
    )
    arbiter_fee = UNITS[1] * ARBITER_FEE_BPS // 10_000
    expert_share = (UNITS[1] - arbiter_fee) * 7000 // 10_000
    assert int(resolved["arbiter_fee_units"]) == arbiter_fee
    assert int(resolved["client_units"]) == UNITS[1] - arbiter_fee - expert_share

    # On chain, to the token unit, what the database says each party received.
    after = [balance(platform, address) for address in who]
    gained = [a - b for a, b in zip(after, before, strict=True)]
    db = {
        "client": -sum(UNITS) + int(resolved["client_units"]),
        "expert": int(released["payee_units"]) + int(resolved["payee_units"]),
        "fee": int(released["platform_fee_units"]) + int(resolved["platform_fee_units"]),
        "arbiter": int(resolved["arbiter_fee_units"]),
    }
    assert gained == [db["client"], db["expert"], db["fee"], db["arbiter"]]
    assert sum(gained) == 0  # nothing left behind in the escrow for this project

    state = await http.get(f"/api/v2/projects/{deal.project_id}/escrow", headers=deal.expert)
    assert state.status_code == 200, state.text
    shown = state.json()
    assert shown["confirmed_block"] >= max(m["settled_block"] for m in rows)
    assert [(m["status"], m["payee_units"]) for m in shown["milestones"]] == [
        ("released", str(UNITS[0] - fee)),
        ("resolved", str(expert_share - expert_share * FEE_BPS // 10_000)),
    ]
    assert Decimal(shown["milestones"][0]["amount_units"]) == UNITS[0]

    # The reconciliation finds the database and the contract agreeing; a milestone changed
    # behind the chain's back is a difference.
    client = ChainClient(chain.url)
    try:
        assert await reconcile(platform.sessionmaker, platform.settings.escrow, client) == 0
        query(database_url, "UPDATE milestones SET status = 'funded' WHERE id = %s", second)
        assert await reconcile(platform.sessionmaker, platform.settings.escrow, client) == 1
        assert escrow_reconciliation_differences._value.get() == 1
    finally:
        await client.close()

    # Each change the chain made was announced once, to both parties.
    for headers in (deal.client, deal.expert):
        changes = [
            (n["payload"]["milestone_title"], n["payload"]["status"])
            for n in await notifications(http, headers)
            if n["kind"] == "milestone_changed"
        ]
        assert sorted(changes) == sorted(
            [
                ("Design review", "funded"),
                ("Full audit", "funded"),
                ("Design review", "released"),
                ("Full audit", "disputed"),
                ("Full audit", "resolved"),
            ]
        )
