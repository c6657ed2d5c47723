"""The controlled vocabularies shared by applications, profiles and projects: skills, chains and
currencies. Filters and matching compare these exact strings, so free text is refused."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class Skill(StrEnum):
    solidity = "solidity"
    vyper = "vyper"
    rust = "rust"
    move = "move"
    cairo = "cairo"
    go = "go"
    typescript = "typescript"
    zk_proofs = "zk-proofs"
    defi = "defi"
    nft = "nft"
    dao_governance = "dao-governance"
    smart_contract_audit = "smart-contract-audit"
    tokenomics = "tokenomics"
    mev = "mev"
    bridges = "bridges"
    wallets = "wallets"
    indexing = "indexing"
    oracles = "oracles"
    layer2 = "layer2"
    cryptography = "cryptography"
    frontend_dapps = "frontend-dapps"
    node_infrastructure = "node-infrastructure"


class Chain(StrEnum):
    ethereum = "ethereum"
    bitcoin = "bitcoin"
    solana = "solana"
    polygon = "polygon"
    arbitrum = "arbitrum"
    optimism = "optimism"
    base = "base"
    avalanche = "avalanche"
    bnb = "bnb"
    cosmos = "cosmos"
    polkadot = "polkadot"
    near = "near"
    sui = "sui"
    aptos = "aptos"
    starknet = "starknet"


EVM_CHAINS = frozenset(
    {
        Chain.ethereum,
        Chain.polygon,
        Chain.arbitrum,
        Chain.optimism,
        Chain.base,
        Chain.avalanche,
        Chain.bnb,
    }
)


class Currency(StrEnum):
    """Currencies with two decimal places: fiat and dollar/euro stablecoins."""

    USD = "USD"
    EUR = "EUR"
    GBP = "GBP"
    CHF = "CHF"
    USDC = "USDC"
    USDT = "USDT"
    DAI = "DAI"


def _unique(values: list[StrEnum]) -> list[StrEnum]:
    # Order kept (the first mention wins) so the stored list reads as the user wrote it.
    return list(dict.fromkeys(values))


SkillList = Annotated[
    list[Skill],
    Field(min_length=1, max_length=20, description="Skills from the controlled vocabulary."),
    AfterValidator(_unique),
]
ChainList = Annotated[
    list[Chain],
    Field(min_length=1, max_length=15, description="Chains from the controlled vocabulary."),
    AfterValidator(_unique),
]


Amount = Annotated[
    Decimal,
    Field(
        gt=0,
        max_digits=12,
        decimal_places=2,
        description='A decimal string with at most two decimal places, e.g. "150.00".',
    ),
]


class Money(BaseModel):
    """An amount of a currency; amounts travel as decimal strings, never floats."""

    model_config = ConfigDict(extra="forbid")

    amount: Amount
    currency: Currency
