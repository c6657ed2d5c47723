"""An arbiter's award whose sending job gave up (the chain unreachable through all its
attempts) can be requested again, and each request is audited; one still being sent cannot."""

from __future__ import annotations

from typing import Any

import pytest

from chainconsult.infra.chain.rpc import ChainClient
from chainconsult.infra.jobs.worker import run_worker
from chainconsult.schedules import worker_resources
from tests.escrow.conftest import Platform
from tests.escrow.scenario import Deal, milestone_rows, mint, planned_deal, sign_and_send
from tests.market import query

AWARD = {"expert_share_bps": 7000, "note": "Most of the audit was delivered."}


async def disputed_deal(platform: Platform, database_url: str) -> tuple[Deal, str]:
    """A deal whose two milestones are funded on chain, the second one disputed."""
    chain, http = platform.chain, platform.http
    deal = await planned_deal(platform, database_url, wallet=chain.expert)
    funding = await http.post(f"/api/v2/projects/{deal.project_id}/escrow", headers=deal.client)
    assert funding.status_code == 200, funding.text
    mint(platform, chain.client, int(funding.json()["amount_units"]))
    sign_and_send(platform, chain.client, funding.json()["transactions"])
    chain.rpc("evm_mine")
    chain.rpc("evm_mine")
    await platform.follow()
    second = deal.milestone_ids[1]
    dispute = await http.post(
        f"/api/v2/milestones/{second}/dispute", json={"reason": "Late."}, headers=deal.client
    )
    assert dispute.status_code == 200, dispute.text
    sign_and_send(platform, chain.client, dispute.json()["transactions"])
    chain.rpc("evm_mine")
    chain.rpc("evm_mine")
    await platform.follow()
    assert milestone_rows(database_url, deal.project_id)[1]["status"] == "disputed"
    return deal, second


def resolution_jobs(database_url: str, milestone_id: str) -> list[tuple[Any, ...]]:
    return query(
        database_url,
        "SELECT status::text, attempts FROM procrastinate_jobs "
        "WHERE task_name = 'escrow.send_resolution' AND args->>'milestone_id' = %s ORDER BY id",
        milestone_id,
    )


async def test_a_resolution_whose_job_gave_up_can_be_requested_again(
    platform: Platform, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = platform.http
    deal, milestone = await disputed_deal(platform, database_url)
    url = f"/api/v2/admin/milestones/{milestone}/resolution"

    first = await http.post(url, json=AWARD, headers=deal.admin)
    assert first.status_code == 202, first.text
    # While its job waits, the award is on its way: a second one is refused.
    again = await http.post(url, json=AWARD, headers=deal.admin)
    assert again.status_code == 409, again.text
    assert again.json()["type"].endswith("milestone-state")

    # The chain is unreachable through the job's last attempt (the eleven before it are
    # skipped: only the last decides that the job fails for good).
    async def unreachable(self: ChainClient, tx: Any) -> int:
        raise ConnectionError("injected: the RPC endpoint does not answer")

    monkeypatch.setattr(ChainClient, "estimate_gas", unreachable)
    query(
        database_url,
        "UPDATE procrastinate_jobs SET attempts = 11 "
        "WHERE task_name = 'escrow.send_resolution' AND args->>'milestone_id' = %s",
        milestone,
    )
    await run_worker(
        worker_resources(platform.settings, platform.sessionmaker),
        concurrency=1,
        queues=["critical"],
        wait=False,
        install_signal_handlers=False,
    )
    assert resolution_jobs(database_url, milestone) == [("failed", 12)]
    assert milestone_rows(database_url, deal.project_id)[1]["resolution_tx_hash"] is None

    # Say the last transaction had been sent and is still known to the node (stuck, or
    # reverted): a new request must not wait on it.
    (known,) = query(database_url, "SELECT tx_hash FROM chain_events WHERE name = 'Disputed'")
    query(
        database_url,
        "UPDATE milestones SET resolution_tx_hash = %s WHERE id = %s",
        known[0],
        milestone,
    )

    # The admin asks again, with another split; a new job sends it.
    monkeypatch.undo()
    retried = await http.post(
        url, json={"expert_share_bps": 6000, "note": "Reconsidered."}, headers=deal.admin
    )
    assert retried.status_code == 202, retried.text
    assert resolution_jobs(database_url, milestone) == [("failed", 12), ("todo", 0)]
    assert milestone_rows(database_url, deal.project_id)[1]["resolution_share_bps"] == 6000
    await run_worker(
        worker_resources(platform.settings, platform.sessionmaker),
        concurrency=1,
        queues=["critical"],
        wait=False,
        install_signal_handlers=False,
    )
    platform.chain.rpc("evm_mine")
    platform.chain.rpc("evm_mine")
    await platform.follow()
    assert milestone_rows(database_url, deal.project_id)[1]["status"] == "resolved"

    audited = query(
        database_url,
        "SELECT details->>'expert_share_bps', details->>'previous_expert_share_bps', "
        "details->>'previous_tx_hash' "
        "FROM audit_log WHERE action = 'escrow.resolution_requested' AND resource_id = %s "
        "ORDER BY occurred_at",
        milestone,
    )
    assert audited == [("7000", None, None), ("6000", "7000", known[0])]
