"""The controlled vocabularies shared by applications, profiles and projects: skills, chains and
currencies. Filters and matching compare these exact strings, so free text is refused."""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, Strict, WithJsonSchema
from pydantic_core import PydanticCustomError

from chainconsult.infra.request_models import FromText, RequestModel


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
    list[FromText[Skill]],
    Field(min_length=1, max_length=20, description="Skills from the controlled vocabulary."),
    AfterValidator(_unique),
]
ChainList = Annotated[
    list[FromText[Chain]],
    Field(min_length=1, max_length=15, description="Chains from the controlled vocabulary."),
    AfterValidator(_unique),
]


AMOUNT_PATTERN = r"^(?:[1-9][0-9]{0,9}(?:\.[0-9]{1,2})?|0\.(?:0[1-9]|[1-9][0-9]?))$"
"""Exactly the amounts Amount accepts: above 0, at most 10 digits before the point and 2 after,
so a client (or a schema-driven fuzzer) can tell a valid amount from the document alone."""
AMOUNT_MAXIMUM = Decimal("9999999999.99")
AMOUNT_STEP = Decimal("0.01")
"""The same bounds as numbers, for API v1, which sends amounts as JSON numbers."""
_AMOUNT_TEXT = re.compile(AMOUNT_PATTERN)


def _decimal_string(value: Any) -> Any:
    # JSON numbers are binary floats: money never travels as one. Decimals built in Python
    # (responses read from the database) pass on to the usual checks.
    if isinstance(value, str) and _AMOUNT_TEXT.fullmatch(value):
        return value
    if isinstance(value, Decimal):
        return value
    raise PydanticCustomError(
        "decimal_string",
        "Input should be a decimal string above 0 with at most 10 digits before the point and "
        '2 after, such as "150.00"',
    )


Amount = Annotated[
    Decimal,
    Strict(False),
    BeforeValidator(_decimal_string),
    Field(
        gt=0,
        max_digits=12,
        decimal_places=2,
        description='A decimal string with at most two decimal places, e.g. "150.00".',
    ),
    WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN}, mode="validation"),
]


class Money(RequestModel):
    """An amount of a currency; amounts travel as decimal strings, never floats."""

    amount: Amount
    currency: FromText[Currency]
