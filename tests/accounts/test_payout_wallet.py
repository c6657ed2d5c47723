"""An expert's payout wallet counts as verified only once the expert proved it by SIWE: on
the profile, on the application, and by the one check the escrow calls."""

from __future__ import annotations

import uuid

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.experts.wallets import is_verified_payout_wallet
from chainconsult.infra.resources import resources_of
from tests.accounts.siwe_support import signed, wallet_key
from tests.helpers import serving
from tests.market import admin, approved_expert

PAYOUT = wallet_key(0xE7E7)
STRANGER = wallet_key(0x5757)


async def _verified(settings: Settings, expert_id: str) -> bool:
    app = create_app(settings)
    async with serving(app):
        session: AsyncSession = resources_of(app).sessionmaker()
        async with session:
            return await is_verified_payout_wallet(session, uuid.UUID(expert_id))


async def test_payout_wallet_is_verified_only_after_siwe_by_that_expert(
    client: AsyncClient, database_url: str, settings: Settings
) -> None:
    admin_headers = await admin(client, database_url)
    expert, headers = await approved_expert(
        client, admin_headers, wallet_address=PAYOUT.address, wallet_chain="ethereum"
    )
    client.cookies.clear()
    profile = f"/api/v2/experts/{expert['id']}"

    assert (await client.get(profile)).json()["payout_wallet_verified"] is False
    page = await client.get(f"/experts/{expert['id']}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert 'id="wallet-verified"' not in page.text
    mine = (await client.get("/api/v2/expert-applications/me", headers=headers)).json()
    assert mine["data"][0]["wallet_verified"] is False
    assert await _verified(settings, expert["id"]) is False

    # Another wallet of theirs proves nothing about the payout address.
    other = await client.post(
        "/api/v2/me/wallets", json=await signed(client, STRANGER), headers=headers
    )
    assert other.status_code == 201
    assert (await client.get(profile)).json()["payout_wallet_verified"] is False

    linked = await client.post(
        "/api/v2/me/wallets", json=await signed(client, PAYOUT), headers=headers
    )
    assert linked.status_code == 201
    assert (await client.get(profile)).json()["payout_wallet_verified"] is True
    page = await client.get(f"/experts/{expert['id']}", headers={"Accept": "text/html"})
    assert 'id="wallet-verified"' in page.text
    mine = (await client.get("/api/v2/expert-applications/me", headers=headers)).json()
    assert mine["data"][0]["wallet_verified"] is True
    queue = (await client.get("/api/v2/admin/expert-applications", headers=admin_headers)).json()
    assert [item["wallet_verified"] for item in queue["data"]] == [True]
    assert await _verified(settings, expert["id"]) is True

    unlinked = await client.delete(f"/api/v2/me/wallets/{PAYOUT.address}", headers=headers)
    assert unlinked.status_code == 204
    assert (await client.get(profile)).json()["payout_wallet_verified"] is False
    assert await _verified(settings, expert["id"]) is False
