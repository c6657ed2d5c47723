"""The development chain (one ganache per test session) and the deployed contracts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from tests.conftest import missing_service
from tests.escrow import devchain

FEE_BPS = 250  # 2.5 %
ARBITER_FEE_BPS = 100  # 1 %


@dataclass(frozen=True)
class Chain:
    url: str
    w3: Web3
    deployer: LocalAccount
    arbiter: LocalAccount
    fee_recipient: LocalAccount
    client: LocalAccount
    expert: LocalAccount
    stranger: LocalAccount

    def rpc(self, method: str, *params: object) -> object:
        return devchain.rpc(self.w3, method, *params)


@pytest.fixture(scope="session")
def chain() -> Iterator[Chain]:
    if not devchain.chain_available():
        missing_service("the development chain (make contract-tools)")
    with devchain.ganache() as url:
        w3 = Web3(Web3.HTTPProvider(url))
        deployer, arbiter, fee, client, expert, stranger, *_ = devchain.accounts()
        yield Chain(url, w3, deployer, arbiter, fee, client, expert, stranger)


@pytest.fixture(scope="session")
def stablecoin(chain: Chain) -> Contract:
    return devchain.deploy(chain.w3, chain.deployer, "TestStablecoin", "Test USD", "TUSD", 6)


@pytest.fixture(scope="session")
def escrow(chain: Chain) -> Contract:
    return devchain.deploy(
        chain.w3,
        chain.deployer,
        "Escrow",
        chain.arbiter.address,
        chain.fee_recipient.address,
        FEE_BPS,
        ARBITER_FEE_BPS,
    )
