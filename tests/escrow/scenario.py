"""Steps of the escrow tests through the API, and the wallets that sign what it returns."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from tests.accounts.siwe_support import signed
from tests.escrow import devchain
from tests.escrow.conftest import Platform
from tests.market import (
    Headers,
    admin,
    approved_expert,
    client_account,
    libpq,
    project_body,
    proposal_body,
)

PRICE = "9000.00"
PLAN = [("Design review", "3000.00"), ("Full audit", "6000.00")]


@dataclass
class Deal:
    project_id: str
    client: Headers
    expert: Headers
    admin: Headers
    milestone_ids: list[str]


async def accepted_project(
    platform: Platform, database_url: str, *, wallet: LocalAccount | None, linked: bool = True
) -> tuple[str, Headers, Headers, Headers]:
    """A project in progress whose expert (payout wallet ``wallet``, proved by Sign-In with
    Ethereum unless not ``linked``) was accepted."""
    http = platform.http
    admin_headers = await admin(http, database_url)
    extra: dict[str, Any] = {}
    if wallet is not None:
        extra = {"wallet_address": wallet.address, "wallet_chain": "ethereum"}
    _expert, expert = await approved_expert(http, admin_headers, **extra)
    if wallet is not None and linked:
        proof = await signed(http, wallet)
        linked_wallet = await http.post("/api/v2/me/wallets", json=proof, headers=expert)
        assert linked_wallet.status_code == 201, linked_wallet.text
    _client, client = await client_account(http)
    project = await http.post("/api/v2/projects", json=project_body(), headers=client)
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    proposal = await http.post(
        f"/api/v2/projects/{project_id}/proposals",
        json=proposal_body(price={"amount": PRICE, "currency": "USD"}),
        headers=expert,
    )
    assert proposal.status_code == 201, proposal.text
    accepted = await http.post(f"/api/v2/proposals/{proposal.json()['id']}/accept", headers=client)
    assert accepted.status_code == 200, accepted.text
    return project_id, client, expert, admin_headers


async def planned_deal(
    platform: Platform, database_url: str, *, wallet: LocalAccount | None, linked: bool = True
) -> Deal:
    project_id, client, expert, admin_headers = await accepted_project(
        platform, database_url, wallet=wallet, linked=linked
    )
    due = dt.date.today() + dt.timedelta(days=20)
    plan = await platform.http.put(
        f"/api/v2/projects/{project_id}/milestones",
        json=[
            {"title": title, "amount": amount, "due_date": (due + dt.timedelta(days=i)).isoformat()}
            for i, (title, amount) in enumerate(PLAN)
        ],
        headers=client,
    )
    assert plan.status_code == 200, plan.text
    ids = [item["id"] for item in plan.json()["data"]]
    return Deal(project_id, client, expert, admin_headers, ids)


def sign_and_send(
    platform: Platform, wallet: LocalAccount, transactions: list[dict[str, Any]]
) -> list[Any]:
    """What the client's wallet does with the API's unsigned transactions."""
    receipts = []
    for tx in transactions:
        receipt = devchain.send(
            platform.chain.w3,
            wallet,
            {"to": tx["to"], "data": tx["data"], "value": int(tx["value"])},
        )
        assert receipt["status"] == 1
        receipts.append(receipt)
    return receipts


def mint(platform: Platform, to: LocalAccount, units: int) -> None:
    devchain.transact(platform.chain.w3, to, platform.stablecoin.functions.mint(to.address, units))


def balance(platform: Platform, address: str) -> int:
    value: int = platform.stablecoin.functions.balanceOf(address).call()
    return value


def milestone_rows(database_url: str, project_id: str) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(libpq(database_url), autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT * FROM milestones WHERE project_id = %s ORDER BY position", (project_id,)
        ).fetchall()
