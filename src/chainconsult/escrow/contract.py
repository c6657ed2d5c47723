"""The Escrow contract as the platform sees it: its ABI (escrow_abi.json, kept equal to the
compiled contract by tests/escrow/test_abi.py), the ids it is keyed by, and the calldata of
the transactions the platform hands to wallets."""

from __future__ import annotations

import json
import uuid
from functools import cache
from importlib import resources
from typing import Any

from eth_utils.address import to_checksum_address
from web3 import Web3

from chainconsult.config import EscrowSettings

_ERC20_APPROVE = [
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    }
]


@cache
def escrow_abi() -> list[dict[str, Any]]:
    text = resources.files("chainconsult.escrow").joinpath("escrow_abi.json").read_text()
    abi: list[dict[str, Any]] = json.loads(text)
    return abi


def chain_id_of(value: uuid.UUID) -> bytes:
    """A platform UUID as the contract's bytes32 key: its 16 bytes, left-padded."""
    return value.bytes.rjust(32, b"\0")


def uuid_of(hex32: str) -> uuid.UUID | None:
    """The UUID a bytes32 key (0x-hex) carries, or None for a key the platform never made."""
    raw = bytes.fromhex(hex32.removeprefix("0x"))
    if len(raw) != 32 or raw[:16] != b"\0" * 16:
        return None
    return uuid.UUID(bytes=raw[16:])


def details_hash(text: str) -> bytes:
    """What the chain records of a dispute reason or a resolution note: its keccak-256."""
    return bytes(Web3.keccak(text=text))


class EscrowContract:
    """Calldata builder; it needs no connection (the wallet sends what it returns)."""

    def __init__(self, settings: EscrowSettings) -> None:
        assert settings.contract is not None
        self.address = settings.contract
        w3 = Web3()
        self._escrow = w3.eth.contract(address=to_checksum_address(self.address), abi=escrow_abi())
        self._w3 = w3

    def _tx(self, to: str, data: str) -> dict[str, str]:
        return {"to": to, "data": data, "value": "0"}

    def approve(self, token: str, amount_units: int) -> dict[str, str]:
        erc20 = self._w3.eth.contract(address=to_checksum_address(token), abi=_ERC20_APPROVE)
        data = erc20.encode_abi("approve", [self.address, amount_units])
        return self._tx(token, data)

    def deposit(
        self,
        *,
        project_id: uuid.UUID,
        milestone_id: uuid.UUID,
        token: str,
        payee: str,
        amount_units: int,
        termination_time: int,
    ) -> dict[str, str]:
        data = self._escrow.encode_abi(
            "deposit",
            [
                chain_id_of(project_id),
                chain_id_of(milestone_id),
                to_checksum_address(token),
                to_checksum_address(payee),
                amount_units,
                termination_time,
            ],
        )
        return self._tx(self.address, data)

    def release(self, project_id: uuid.UUID, milestone_id: uuid.UUID) -> dict[str, str]:
        data = self._escrow.encode_abi(
            "release", [chain_id_of(project_id), chain_id_of(milestone_id)]
        )
        return self._tx(self.address, data)

    def dispute(
        self, project_id: uuid.UUID, milestone_id: uuid.UUID, reason: str
    ) -> dict[str, str]:
        data = self._escrow.encode_abi(
            "dispute", [chain_id_of(project_id), chain_id_of(milestone_id), details_hash(reason)]
        )
        return self._tx(self.address, data)

    def resolve(
        self, project_id: uuid.UUID, milestone_id: uuid.UUID, expert_share_bps: int, note: str
    ) -> dict[str, str]:
        data = self._escrow.encode_abi(
            "resolve",
            [
                chain_id_of(project_id),
                chain_id_of(milestone_id),
                expert_share_bps,
                details_hash(note),
            ],
        )
        return self._tx(self.address, data)
