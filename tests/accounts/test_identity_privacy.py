"""Second factors and wallets in the data export (no secret in it) and erased with the
account."""

from __future__ import annotations

from httpx import AsyncClient

from tests.accounts.identity_support import TotpClock, turn_on_two_factor
from tests.accounts.siwe_support import signed, wallet_key
from tests.helpers import PASSWORD, login, register
from tests.market import query

IDENTITY_TABLES = ("account_totp", "account_recovery_codes", "account_wallets")


async def test_export_leaves_secrets_out_and_erasure_removes_factors_and_wallets(
    client: AsyncClient, database_url: str, totp_clock: TotpClock
) -> None:
    account = await register(client, email="gone@example.com")
    headers = await login(client, "gone@example.com")
    client.cookies.clear()
    secret, codes = await turn_on_two_factor(client, headers, totp_clock)
    key = wallet_key(0xD0D0)
    linked = await client.post(
        "/api/v2/me/wallets", json=await signed(client, key), headers=headers
    )
    assert linked.status_code == 201

    export = await client.get("/api/v2/me/export", headers=headers)
    tables = export.json()["tables"]
    assert [row["address"] for row in tables["account_wallets"]] == [key.address]
    assert len(tables["account_recovery_codes"]) == 10
    assert tables["account_totp"][0]["enabled_at"] is not None
    assert "secret_encrypted" not in tables["account_totp"][0]
    assert all("code_hash" not in row for row in tables["account_recovery_codes"])
    assert secret not in export.text
    assert codes[0] not in export.text

    erased = await client.request(
        "DELETE", "/api/v2/me", json={"password": PASSWORD}, headers=headers
    )
    assert erased.status_code == 204
    for table in IDENTITY_TABLES:
        rows = query(
            database_url, f"SELECT count(*) FROM {table} WHERE account_id = %s", account["id"]
        )
        assert rows == [(0,)], table
