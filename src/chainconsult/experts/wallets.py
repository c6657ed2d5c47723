"""Payout wallet addresses, checked against the format of the chain they are on, and the one
rule of a verified payout wallet: an expert's payout address counts as theirs only once they
signed with it (Sign-In with Ethereum, accounts/wallets.py).

Each chain family has its own encoding; the checks use the libraries that define them
(eth-utils for EIP-55, base58 and bech32 reference implementations). Polkadot's SS58 has no
small maintained Python library, so its checksum (BLAKE2b-512 over "SS58PRE" + payload, the
first two bytes) is computed here with hashlib."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence

import base58
import bech32
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.wallets import WalletService
from chainconsult.experts.vocabulary import EVM_CHAINS, Chain
from chainconsult.models.experts import ExpertProfile

_HEX40 = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX_1_TO_64 = re.compile(r"0x[0-9a-fA-F]{1,64}")
_NEAR_NAMED = re.compile(r"(?=.{2,64}$)[a-z0-9]+([_-][a-z0-9]+)*(\.[a-z0-9]+([_-][a-z0-9]+)*)*")
_NEAR_IMPLICIT = re.compile(r"[0-9a-f]{64}")
# StarkNet addresses are field elements: below the prime 2**251 + 17 * 2**192 + 1.
_STARK_PRIME = 2**251 + 17 * 2**192 + 1


def payout_wallet_verified(
    wallet_address: str | None, wallet_chain: str | None, linked: Sequence[str]
) -> bool:
    """The rule itself, for rows already at hand: an EVM payout address among the owner's
    SIWE-linked addresses (an EOA is the same address on every EVM chain)."""
    if wallet_address is None or wallet_chain is None:
        return False
    if Chain(wallet_chain) not in EVM_CHAINS:
        return False
    return wallet_address.lower() in {address.lower() for address in linked}


async def is_verified_payout_wallet(session: AsyncSession, expert_id: uuid.UUID) -> bool:
    """Whether the payout wallet on the expert's profile is an EVM address the expert
    proved by SIWE: the check before any payout targets it (escrow)."""
    profile = await session.get(ExpertProfile, expert_id)
    if profile is None:
        return False
    return payout_wallet_verified(
        profile.wallet_address,
        profile.wallet_chain,
        await WalletService(session).linked_addresses(expert_id),
    )


def wallet_problem(chain: Chain, address: str) -> str | None:
    """Why ``address`` is not a valid address on ``chain``, or None when it is."""
    if chain in EVM_CHAINS:
        return _evm(address)
    checks = {
        Chain.bitcoin: _bitcoin,
        Chain.solana: _solana,
        Chain.cosmos: _cosmos,
        Chain.polkadot: _polkadot,
        Chain.near: _near,
        Chain.sui: _sui,
        Chain.aptos: _aptos,
        Chain.starknet: _starknet,
    }
    return checks[chain](address)


def _evm(address: str) -> str | None:
    if not _HEX40.fullmatch(address):
        return "an EVM address is 0x followed by 40 hex digits"
    digits = address[2:]
    mixed = digits != digits.lower() and digits != digits.upper()
    if not mixed:
        return None
    # Imported on first use: eth_utils and what it loads take about 7 MB in every process that
    # imports it, and most API workers never see a mixed-case EVM address.
    from eth_utils.address import is_checksum_address

    if not is_checksum_address(address):
        return "the mixed-case address fails its EIP-55 checksum (a typo?)"
    return None


def _b58(address: str) -> bytes | None:
    try:
        return base58.b58decode(address)
    except ValueError:
        return None


def _bitcoin(address: str) -> str | None:
    if address.lower().startswith("bc1"):
        version, program = bech32.decode("bc", address)
        if version is None or program is None:
            if _is_taproot(address):
                return None
            return "not a valid bech32/bech32m segwit address"
        return None
    try:
        payload = base58.b58decode_check(address)
    except ValueError:
        return "not a valid base58check or bc1 address"
    if len(payload) != 21 or payload[0] not in (0x00, 0x05):
        return "not a mainnet P2PKH (1...) or P2SH (3...) address"
    return None


# BIP-350 checksum constant. The bech32 package predates bech32m (witness v1+, taproot), so
# taproot addresses are verified with its own polymod primitives.
_BECH32M_CONST = 0x2BC830A3


def _is_taproot(address: str) -> bool:
    lowered = address.lower()
    if address not in (lowered, address.upper()) or not lowered.startswith("bc1p"):
        return False
    charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    if any(char not in charset for char in lowered[3:]) or len(lowered) != 62:
        return False
    data = [charset.index(char) for char in lowered[3:]]
    if bech32.bech32_polymod(bech32.bech32_hrp_expand("bc") + data) != _BECH32M_CONST:
        return False
    program = bech32.convertbits(data[1:-6], 5, 8, False)
    return data[0] == 1 and program is not None and len(program) == 32


def _solana(address: str) -> str | None:
    decoded = _b58(address)
    if decoded is None or len(decoded) != 32 or not 32 <= len(address) <= 44:
        return "a Solana address is a base58-encoded 32-byte public key"
    return None


def _cosmos(address: str) -> str | None:
    hrp, data = bech32.bech32_decode(address)
    if hrp != "cosmos" or data is None:
        return "a Cosmos Hub address is bech32 with the 'cosmos' prefix"
    program = bech32.convertbits(data, 5, 8, False)
    if program is None or len(program) not in (20, 32):
        return "a Cosmos Hub address holds 20 or 32 bytes"
    return None


def _polkadot(address: str) -> str | None:
    decoded = _b58(address)
    if decoded is None or len(decoded) != 35:
        return "a Polkadot address is SS58 (base58, 35 bytes)"
    body, checksum = decoded[:33], decoded[33:]
    digest = hashlib.blake2b(b"SS58PRE" + body, digest_size=64).digest()
    if digest[:2] != checksum:
        return "the SS58 checksum does not match (a typo?)"
    return None


def _near(address: str) -> str | None:
    if _NEAR_IMPLICIT.fullmatch(address) or _NEAR_NAMED.fullmatch(address):
        return None
    return "a NEAR account is a named account (alice.near) or 64 lowercase hex digits"


def _sui(address: str) -> str | None:
    if re.fullmatch(r"0x[0-9a-fA-F]{64}", address):
        return None
    return "a Sui address is 0x followed by 64 hex digits"


def _aptos(address: str) -> str | None:
    if _HEX_1_TO_64.fullmatch(address):
        return None
    return "an Aptos address is 0x followed by up to 64 hex digits"


def _starknet(address: str) -> str | None:
    if _HEX_1_TO_64.fullmatch(address) and int(address, 16) < _STARK_PRIME:
        return None
    return "a StarkNet address is 0x followed by a hex field element below 2**251 + 17*2**192 + 1"
