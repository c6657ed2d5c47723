"""The development chain of the escrow tests: the pieces of `chainconsult devchain`
(chainconsult/commands/devchain.py) on a free loopback port, plus a wallet's signing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from chainconsult.commands.devchain import (
    CHAIN_ID,
    available,
    compiled,
    deploy,
    dev_accounts,
    send_raw,
    sign,
    transact,
)
from chainconsult.commands.devchain import ganache as _ganache
from tests.smtp import free_port

__all__ = [
    "CHAIN_ID",
    "accounts",
    "chain_available",
    "compiled",
    "deploy",
    "ganache",
    "rpc",
    "send",
    "send_raw",
    "sign",
    "transact",
]

chain_available = available
accounts = dev_accounts


@contextmanager
def ganache() -> Iterator[str]:
    with _ganache(free_port()) as url:
        yield url


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    if "error" in response:
        raise RuntimeError(f"{method}: {response['error']}")
    return response["result"]


def send(w3: Web3, signer: LocalAccount, tx: dict[str, Any]) -> Any:
    """Sign ``tx`` locally (as a wallet would), send it, wait for it; the receipt."""
    return send_raw(w3, sign(w3, signer, tx))
