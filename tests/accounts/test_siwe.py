"""Sign-In with Ethereum: link a wallet, log in with it, and every bad message refused with
401 invalid-signature (nothing linked, no session)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from httpx import AsyncClient

from tests.accounts.identity_support import TotpClock, turn_on_two_factor
from tests.accounts.siwe_support import nonce, sign, signed, siwe_text, wallet_key
from tests.helpers import login, register

KEY = wallet_key(0xA11CE)
OTHER = wallet_key(0xB0B)


async def test_link_a_wallet_then_log_in_with_it(client: AsyncClient) -> None:
    account = await register(client, email="wal@example.com")
    headers = await login(client, "wal@example.com")
    client.cookies.clear()

    unknown = await client.post("/api/v2/auth/siwe/login", json=await signed(client, KEY))
    assert unknown.status_code == 401
    assert unknown.json()["type"].endswith("/unknown-wallet")

    linked = await client.post(
        "/api/v2/me/wallets", json=await signed(client, KEY, chain_id=8453), headers=headers
    )
    assert linked.status_code == 201, linked.text
    assert linked.json()["address"] == KEY.address
    assert linked.json()["chain_id"] == 8453
    listed = (await client.get("/api/v2/me/wallets", headers=headers)).json()
    assert [wallet["address"] for wallet in listed] == [KEY.address]

    login_response = await client.post("/api/v2/auth/siwe/login", json=await signed(client, KEY))
    assert login_response.status_code == 200, login_response.text
    token = login_response.json()["access_token"]
    me = await client.get("/api/v2/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["id"] == account["id"]
    assert "session" in client.cookies


async def test_a_wallet_belongs_to_one_account_and_can_be_unlinked(client: AsyncClient) -> None:
    await register(client, email="one@example.com")
    await register(client, email="two@example.com")
    first = await login(client, "one@example.com")
    second = await login(client, "two@example.com")
    client.cookies.clear()
    assert (
        await client.post("/api/v2/me/wallets", json=await signed(client, KEY), headers=first)
    ).status_code == 201

    taken = await client.post("/api/v2/me/wallets", json=await signed(client, KEY), headers=second)
    assert taken.status_code == 409

    gone = await client.delete(f"/api/v2/me/wallets/{KEY.address.lower()}", headers=first)
    assert gone.status_code == 204
    assert (await client.get("/api/v2/me/wallets", headers=first)).json() == []
    refused = await client.post("/api/v2/auth/siwe/login", json=await signed(client, KEY))
    assert refused.json()["type"].endswith("/unknown-wallet")
    missing = await client.delete(f"/api/v2/me/wallets/{KEY.address}", headers=first)
    assert missing.status_code == 404


async def test_a_nonce_is_good_once(client: AsyncClient) -> None:
    await register(client, email="rep@example.com")
    headers = await login(client, "rep@example.com")
    client.cookies.clear()
    body = await signed(client, KEY)
    assert (await client.post("/api/v2/me/wallets", json=body, headers=headers)).status_code == 201

    replayed = await client.post("/api/v2/auth/siwe/login", json=body)
    assert replayed.status_code == 401
    assert replayed.json()["reason"] == "nonce"


def _from_now(options: dict[str, Any]) -> dict[str, Any]:
    """Time offsets made into times when the test runs (not when it was collected)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return {
        name: now + value if isinstance(value, dt.timedelta) else value
        for name, value in options.items()
    }


BAD_MESSAGES: list[tuple[str, dict[str, Any], str]] = [
    ("another domain", {"domain": "evil.example"}, "domain"),
    ("a URI on another site", {"uri": "https://evil.example/login"}, "uri"),
    ("a chain not accepted", {"chain_id": 137}, "chain"),
    ("an expired message", {"expiration": dt.timedelta(minutes=-1)}, "expired"),
    ("not valid yet", {"not_before": dt.timedelta(minutes=5)}, "not-yet-valid"),
    ("issued in the future", {"issued_at": dt.timedelta(hours=1)}, "not-yet-valid"),
]


@pytest.mark.parametrize(
    ("case", "options", "reason"), BAD_MESSAGES, ids=[c[0] for c in BAD_MESSAGES]
)
async def test_bad_messages_are_refused_and_link_nothing(
    client: AsyncClient, case: str, options: dict[str, Any], reason: str
) -> None:
    await register(client, email="bad@example.com")
    headers = await login(client, "bad@example.com")
    client.cookies.clear()

    for path in ("/api/v2/me/wallets", "/api/v2/auth/siwe/login"):
        refused = await client.post(
            path, json=await signed(client, KEY, **_from_now(options)), headers=headers
        )
        assert refused.status_code == 401, (case, refused.text)
        assert refused.json()["type"].endswith("/invalid-signature")
        assert refused.json()["reason"] == reason
    assert (await client.get("/api/v2/me/wallets", headers=headers)).json() == []


async def test_unknown_nonce_wrong_signer_and_malformed_messages_are_refused(
    client: AsyncClient,
) -> None:
    await register(client, email="mal@example.com")
    headers = await login(client, "mal@example.com")
    client.cookies.clear()

    made_up = siwe_text(KEY.address, "abcdef0123456789")
    cases = {
        "nonce": {"message": made_up, "signature": sign(KEY, made_up)},
    }
    text = siwe_text(KEY.address, await nonce(client))
    cases["signature"] = {"message": text, "signature": sign(OTHER, text)}
    lower = siwe_text(KEY.address.lower(), await nonce(client))
    cases["malformed"] = {"message": lower, "signature": sign(KEY, lower)}
    # Not a URL at all (an unclosed IPv6 host): refused like any malformed message.
    no_url = siwe_text(KEY.address, await nonce(client), uri="http://[bad")
    for reason, body in [
        *cases.items(),
        ("malformed", {"message": no_url, "signature": sign(KEY, no_url)}),
    ]:
        refused = await client.post("/api/v2/me/wallets", json=body, headers=headers)
        assert refused.status_code == 401, reason
        assert refused.json()["type"].endswith("/invalid-signature")
        assert refused.json()["reason"] == reason
    # The nonce of the message signed by the wrong key was not spent: the right one links.
    right = {"message": text, "signature": sign(KEY, text)}
    assert (await client.post("/api/v2/me/wallets", json=right, headers=headers)).status_code == 201


async def test_a_message_without_statement_is_accepted_and_2fa_still_applies(
    client: AsyncClient, totp_clock: TotpClock
) -> None:
    await register(client, email="mfa-wallet@example.com")
    headers = await login(client, "mfa-wallet@example.com")
    client.cookies.clear()
    body = await signed(client, KEY, statement=None)
    assert "\n\n\nURI: " in body["message"]
    assert (await client.post("/api/v2/me/wallets", json=body, headers=headers)).status_code == 201
    await turn_on_two_factor(client, headers, totp_clock)

    wallet_login = await client.post("/api/v2/auth/siwe/login", json=await signed(client, KEY))
    assert wallet_login.status_code == 200
    assert wallet_login.json()["mfa_required"] is True
    assert "access_token" not in wallet_login.json()
