"""The development chain (one ganache per test session), the deployed contracts, and the
platform configured for them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from web3 import Web3
from web3.contract import Contract

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.escrow.watcher import follow_chain
from chainconsult.infra.chain.rpc import ChainClient
from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from tests.conftest import make_settings, missing_service
from tests.escrow import devchain
from tests.helpers import serving

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


@dataclass
class Platform:
    """The platform pointed at the development chain, and the accounts of one project."""

    http: AsyncClient
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    chain: Chain
    stablecoin: Contract
    escrow: Contract

    async def follow(self) -> int:
        """One run of the watcher job's body."""
        client = ChainClient(self.chain.url)
        try:
            return await follow_chain(self.sessionmaker, self.settings.escrow, client)
        finally:
            await client.close()


def escrow_env(
    chain: Chain, stablecoin: Contract, escrow: Contract, tmp_path: Path
) -> dict[str, Any]:
    key_file = tmp_path / "arbiter.key"
    key_file.write_text(chain.arbiter.key.hex())
    return {
        "REDIS_URL": None,
        "ESCROW_RPC_URL": chain.url,
        "ESCROW_CHAIN_ID": devchain.CHAIN_ID,
        "ESCROW_CONTRACT": escrow.address,
        "ESCROW_TOKENS": f"USDC:{stablecoin.address}:6",
        "ESCROW_CONFIRMATIONS": 2,
        "ESCROW_ARBITER_KEY_FILE": str(key_file),
        # The chain is shared by the session's tests: start from where it is now.
        "ESCROW_START_BLOCK": chain.w3.eth.block_number + 1,
        "PLATFORM_FEE_BPS": FEE_BPS,
        "PLATFORM_FEE_ADDRESS": chain.fee_recipient.address,
    }


@pytest.fixture
async def platform(
    chain: Chain, stablecoin: Contract, escrow: Contract, database_url: str, tmp_path: Path
) -> AsyncIterator[Platform]:
    settings = make_settings(
        database_url, tmp_path, **escrow_env(chain, stablecoin, escrow, tmp_path)
    )
    engine = build_engine(settings.database, application_name="escrow-tests")
    try:
        async with serving(create_app(settings)) as http:
            yield Platform(http, settings, build_sessionmaker(engine), chain, stablecoin, escrow)
    finally:
        await engine.dispose()
