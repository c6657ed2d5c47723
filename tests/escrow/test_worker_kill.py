"""A watcher killed in the middle of applying events loses and duplicates nothing: its
transaction never commits, and the next run applies every event once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import TEST_SECRET
from tests.escrow.conftest import Platform
from tests.escrow.follow_process import APPLICATION_NAME
from tests.escrow.scenario import milestone_rows, mint, planned_deal, sign_and_send
from tests.market import libpq, query

ROOT = Path(__file__).resolve().parents[2]


def watcher_environment(platform: Platform, database_url: str) -> dict[str, str]:
    escrow = platform.settings.escrow
    assert escrow.rpc_url is not None
    return {
        **os.environ,
        "CHAINCONSULT_ENV": "test",
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "ESCROW_RPC_URL": escrow.rpc_url.get_secret_value(),
        "ESCROW_CHAIN_ID": str(escrow.chain_id),
        "ESCROW_CONTRACT": str(escrow.contract),
        "ESCROW_TOKENS": ",".join(f"{t.symbol}:{t.address}:{t.decimals}" for t in escrow.tokens),
        "ESCROW_CONFIRMATIONS": str(escrow.confirmations),
        "ESCROW_START_BLOCK": str(escrow.start_block),
    }


def wait_until_blocked(database_url: str, deadline_s: float = 60) -> None:
    """Until the watcher's connection waits for a row lock: mid-way through its step."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        rows = query(
            database_url,
            "SELECT 1 FROM pg_stat_activity WHERE application_name = %s "
            "AND wait_event_type = 'Lock'",
            APPLICATION_NAME,
        )
        if rows:
            return
        time.sleep(0.1)
    raise AssertionError("the watcher never reached the locked milestone")


@pytest.mark.slow
async def test_a_watcher_killed_mid_step_loses_and_duplicates_nothing(
    platform: Platform, database_url: str
) -> None:
    chain = platform.chain
    deal = await planned_deal(platform, database_url, wallet=chain.expert)
    funding = await platform.http.post(
        f"/api/v2/projects/{deal.project_id}/escrow", headers=deal.client
    )
    mint(platform, chain.client, 9_000_000_000)
    sign_and_send(platform, chain.client, funding.json()["transactions"])
    chain.rpc("evm_mine")

    # Hold the second milestone's row: the watcher applies the first deposit, then waits.
    with psycopg.connect(libpq(database_url)) as holder:
        holder.execute(
            "SELECT 1 FROM milestones WHERE id = %s FOR UPDATE", (deal.milestone_ids[1],)
        )
        watcher = subprocess.Popen(
            [sys.executable, "-m", "tests.escrow.follow_process"],
            cwd=ROOT,
            env=watcher_environment(platform, database_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until_blocked(database_url)
            watcher.send_signal(signal.SIGKILL)
        finally:
            watcher.wait(30)
            assert watcher.stdout is not None
            assert watcher.stderr is not None
            watcher.stdout.close()
            watcher.stderr.close()
        assert watcher.returncode == -signal.SIGKILL
        holder.rollback()

    # The killed transaction never commits (its backend rolls back once it sees the client
    # gone): nothing of the step is visible.
    assert [m["status"] for m in milestone_rows(database_url, deal.project_id)] == [
        "draft",
        "draft",
    ]
    assert await platform.follow() == 2
    assert [m["status"] for m in milestone_rows(database_url, deal.project_id)] == [
        "funded",
        "funded",
    ]
    counts = query(
        database_url,
        "SELECT count(*), count(DISTINCT (tx_hash, log_index)) FROM chain_events "
        "WHERE name = 'Deposited'",
    )
    assert counts == [(2, 2)]
    assert await platform.follow() == 0
