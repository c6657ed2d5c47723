"""The escrow group of the settings (escrow/, infra/chain)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode

from chainconsult.infra.settings import SETTINGS_CONFIG, split_commas


class EscrowToken(NamedTuple):
    symbol: str
    address: str
    decimals: int


def _parse_tokens(value: Any) -> Any:
    """``USDC:0x..:6,DAI:0x..:18`` into EscrowTokens; the address in its EIP-55 form."""
    if not isinstance(value, str):
        return value
    tokens = []
    for item in split_commas(value):
        parts = item.split(":")
        if len(parts) != 3 or not re.fullmatch(r"0x[0-9a-fA-F]{40}", parts[1]):
            raise ValueError(f"{item!r} is not SYMBOL:0xADDRESS:DECIMALS")
        if not parts[2].isdigit() or not 0 <= int(parts[2]) <= 36:
            raise ValueError(f"{item!r}: decimals must be a whole number from 0 to 36")
        from eth_utils.address import to_checksum_address

        tokens.append(EscrowToken(parts[0].upper(), to_checksum_address(parts[1]), int(parts[2])))
    return tokens


def _evm_address(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        raise ValueError("must be an EVM address: 0x followed by 40 hex digits")
    from eth_utils.address import to_checksum_address

    return to_checksum_address(value)


class EscrowSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    rpc_url: SecretStr | None = Field(None, validation_alias="ESCROW_RPC_URL")
    """JSON-RPC endpoint of the chain the escrow contract is on; unset: escrow is off (its
    routes answer 503 escrow-not-configured)."""
    chain_id: int = Field(1337, ge=1, validation_alias="ESCROW_CHAIN_ID")
    """Chain id the transactions are built for; the watcher refuses an endpoint on another."""
    contract: str | None = Field(None, validation_alias="ESCROW_CONTRACT")
    """Address of the deployed Escrow contract (contracts/Escrow.sol)."""
    tokens: Annotated[list[EscrowToken], NoDecode] = Field(
        default_factory=list, validation_alias="ESCROW_TOKENS"
    )
    """Stablecoins escrow accepts on that chain: SYMBOL:0xADDRESS:DECIMALS, comma separated
    (USDC:0x..:6,DAI:0x..:18). A project in USD may use any of them."""
    confirmations: int = Field(12, ge=1, le=1000, validation_alias="ESCROW_CONFIRMATIONS")
    """Blocks an event must be buried under (its own included) before the platform acts on it;
    1 on a development chain."""
    arbiter_key_file: Path | None = Field(None, validation_alias="ESCROW_ARBITER_KEY_FILE")
    """File holding the arbiter's private key (hex); the resolution job signs with it. Never
    logged."""
    start_block: int = Field(0, ge=0, validation_alias="ESCROW_START_BLOCK")
    """Block the watcher starts from on a fresh database (the contract's deployment block)."""
    termination_days: int = Field(30, ge=1, le=3650, validation_alias="ESCROW_TERMINATION_DAYS")
    """Days after the last milestone's due date from which the client may withdraw what is
    neither released nor disputed."""
    platform_fee_bps: int = Field(0, ge=0, le=10_000, validation_alias="PLATFORM_FEE_BPS")
    """Platform fee on payouts, in basis points; must equal the deployed contract's feeBps."""
    platform_fee_address: str | None = Field(None, validation_alias="PLATFORM_FEE_ADDRESS")
    """Address the platform fee goes to (the deployed contract's feeRecipient)."""

    _address = field_validator("contract", "platform_fee_address")(_evm_address)

    @field_validator("tokens", mode="before")
    @classmethod
    def _tokens(cls, value: Any) -> Any:
        return _parse_tokens(value)

    @property
    def configured(self) -> bool:
        return self.rpc_url is not None and self.contract is not None and bool(self.tokens)
