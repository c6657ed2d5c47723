"""Signed EIP-4361 messages for the tests, made with eth-account test keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from httpx import AsyncClient

SITE = "127.0.0.1:8000"  # the tests' PUBLIC_URL (the default, http://127.0.0.1:8000)


def wallet_key(seed: int) -> LocalAccount:
    """A deterministic test key (never a real wallet)."""
    return Account.from_key(seed.to_bytes(32, "big"))


def siwe_text(
    address: str,
    nonce: str,
    *,
    domain: str = SITE,
    uri: str = f"http://{SITE}/login",
    chain_id: int = 1,
    issued_at: dt.datetime | None = None,
    expiration: dt.datetime | None = None,
    not_before: dt.datetime | None = None,
    statement: str | None = "Sign in to chainconsult.",
) -> str:
    issued = issued_at or dt.datetime.now(dt.UTC)
    lines = [f"{domain} wants you to sign in with your Ethereum account:", address, ""]
    if statement is not None:
        lines += [statement, ""]
    else:
        lines += [""]
    lines += [
        f"URI: {uri}",
        "Version: 1",
        f"Chain ID: {chain_id}",
        f"Nonce: {nonce}",
        f"Issued At: {issued.isoformat().replace('+00:00', 'Z')}",
    ]
    if expiration is not None:
        lines.append(f"Expiration Time: {expiration.isoformat().replace('+00:00', 'Z')}")
    if not_before is not None:
        lines.append(f"Not Before: {not_before.isoformat().replace('+00:00', 'Z')}")
    return "\n".join(lines)


def sign(key: LocalAccount, text: str) -> str:
    return "0x" + key.sign_message(encode_defunct(text=text)).signature.hex()


async def nonce(client: AsyncClient) -> str:
    response = await client.get("/api/v2/auth/siwe/nonce")
    assert response.status_code == 200, response.text
    value: str = response.json()["nonce"]
    return value


async def signed(client: AsyncClient, key: LocalAccount, **options: Any) -> dict[str, str]:
    """A fresh nonce in a message signed by ``key``: a SIWE request body."""
    text = siwe_text(key.address, await nonce(client), **options)
    return {"message": text, "signature": sign(key, text)}
