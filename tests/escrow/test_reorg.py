"""A reorganisation that removes a deposit un-funds its milestone; the deposit mined again
funds it again; no event is ever applied twice."""

from __future__ import annotations

from tests.escrow import devchain
from tests.escrow.conftest import Platform
from tests.escrow.scenario import milestone_rows, mint, planned_deal
from tests.market import query


def ledger(database_url: str, milestone_ids: list[str]) -> list[tuple[str, str]]:
    """The applied events of the two milestones, as (event, "first" or "second")."""
    names = {key(m): label for m, label in zip(milestone_ids, ("first", "second"), strict=True)}
    rows = query(
        database_url,
        "SELECT name, subject FROM chain_events WHERE subject = ANY(%s) "
        "ORDER BY block_number, log_index",
        list(names),
    )
    return [(name, names[subject]) for name, subject in rows]


def key(milestone_id: str) -> str:
    return "0x" + "00" * 16 + milestone_id.replace("-", "")


async def test_a_reorganised_deposit_is_unfunded_and_refunded_when_mined_again(
    platform: Platform, database_url: str
) -> None:
    chain, w3 = platform.chain, platform.chain.w3
    deal = await planned_deal(platform, database_url, wallet=chain.expert)
    funding = await platform.http.post(
        f"/api/v2/projects/{deal.project_id}/escrow", headers=deal.client
    )
    approve, first, second = funding.json()["transactions"]
    mint(platform, chain.client, 9_000_000_000)
    devchain.send(w3, chain.client, {"to": approve["to"], "data": approve["data"]})
    devchain.send(w3, chain.client, {"to": first["to"], "data": first["data"]})
    fork_point = chain.rpc("evm_snapshot")
    # The second deposit, signed once: the same bytes are mined again after the reorg.
    raw = devchain.sign(w3, chain.client, {"to": second["to"], "data": second["data"]})
    devchain.send_raw(w3, raw)
    chain.rpc("evm_mine")
    chain.rpc("evm_mine")
    await platform.follow()
    assert [m["status"] for m in milestone_rows(database_url, deal.project_id)] == [
        "funded",
        "funded",
    ]
    assert ledger(database_url, deal.milestone_ids) == [
        ("Deposited", "first"),
        ("Deposited", "second"),
    ]

    # The reorganisation: the chain goes back to before the second deposit, and grows a
    # longer branch without it (new blocks at the same heights, other hashes).
    assert chain.rpc("evm_revert", fork_point) is True
    chain.rpc("evm_increaseTime", 60)
    for _ in range(4):
        chain.rpc("evm_mine")
    assert await platform.follow() == 1  # one event undone
    rows = milestone_rows(database_url, deal.project_id)
    assert [m["status"] for m in rows] == ["funded", "draft"]
    assert rows[1]["depositor_address"] is None
    assert rows[1]["funded_block"] is None
    assert ledger(database_url, deal.milestone_ids) == [("Deposited", "first")]

    # The same deposit is mined again on the new branch.
    devchain.send_raw(w3, raw)
    chain.rpc("evm_mine")
    assert await platform.follow() == 1
    assert await platform.follow() == 0  # nothing left to apply, nothing applied twice
    rows = milestone_rows(database_url, deal.project_id)
    assert [m["status"] for m in rows] == ["funded", "funded"]
    assert ledger(database_url, deal.milestone_ids) == [
        ("Deposited", "first"),
        ("Deposited", "second"),
    ]
    (tx_hash,) = query(
        database_url,
        "SELECT tx_hash FROM chain_events WHERE subject = %s",
        key(deal.milestone_ids[1]),
    )
    assert tx_hash == ("0x" + w3.keccak(raw).hex().removeprefix("0x"),)
