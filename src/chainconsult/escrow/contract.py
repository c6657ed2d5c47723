"""The Escrow contract as the platform sees it: its ABI (escrow_abi.json, kept equal to the
compiled contract by tests/escrow/test_abi.py), the ids it is keyed by, and the calldata of
the transactions the platform hands to wallets."""

from __future__ import annotations

import json
import uuid
from functools import cache
from importlib import resources
from typing import Any

from chainconsult.config import EscrowSettings

# ERC-20 approve(address spender, uint256 value).
_APPROVE = ("approve", ("address", "uint256"))


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
    from eth_utils.crypto import keccak

    return bytes(keccak(text=text))


def _calldata(name: str, types: tuple[str, ...], args: list[Any]) -> str:
    # eth_abi rather than web3's contract objects: web3 costs an API worker ~27 MB and
    # seconds of start-up for what is a selector and an encoding.
    from eth_abi.abi import encode
    from eth_utils.crypto import keccak

    selector = keccak(text=f"{name}({','.join(types)})")[:4]
    return "0x" + (selector + encode(list(types), args)).hex()


@cache
def _inputs(name: str) -> tuple[str, ...]:
    (function,) = [f for f in escrow_abi() if f["type"] == "function" and f["name"] == name]
    return tuple(str(arg["type"]) for arg in function["inputs"])


class EscrowContract:
    """Calldata builder; it needs no connection (the wallet sends what it returns)."""

    def __init__(self, settings: EscrowSettings) -> None:
        assert settings.contract is not None
        self.address = settings.contract

    def _tx(self, to: str, data: str) -> dict[str, str]:
        return {"to": to, "data": data, "value": "0"}

    def _call(self, name: str, *args: Any) -> dict[str, str]:
        return self._tx(self.address, _calldata(name, _inputs(name), list(args)))

    def approve(self, token: str, amount_units: int) -> dict[str, str]:
        name, types = _APPROVE
        return self._tx(token, _calldata(name, types, [self.address, amount_units]))

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
        return self._call(
            "deposit",
            chain_id_of(project_id),
            chain_id_of(milestone_id),
            token,
            payee,
            amount_units,
            termination_time,
        )

    def release(self, project_id: uuid.UUID, milestone_id: uuid.UUID) -> dict[str, str]:
        return self._call("release", chain_id_of(project_id), chain_id_of(milestone_id))

    def dispute(
        self, project_id: uuid.UUID, milestone_id: uuid.UUID, reason: str
    ) -> dict[str, str]:
        return self._call(
            "dispute", chain_id_of(project_id), chain_id_of(milestone_id), details_hash(reason)
        )

    def resolve(
        self, project_id: uuid.UUID, milestone_id: uuid.UUID, expert_share_bps: int, note: str
    ) -> dict[str, str]:
        return self._call(
            "resolve",
            chain_id_of(project_id),
            chain_id_of(milestone_id),
            expert_share_bps,
            details_hash(note),
        )
