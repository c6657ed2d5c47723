"""Wallets an account has proved by Sign-In with Ethereum. What they verify (an expert's
payout wallet) is the experts' rule: experts/wallets.py."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.siwe import SiweMessage
from chainconsult.errors import Conflict, NotFound
from chainconsult.models.base import utcnow
from chainconsult.models.identity import Wallet


def wallets_tag(account_id: uuid.UUID) -> str:
    """The cache tag of whatever shows an account's linked wallets (an expert's profile
    carries it): dropped when one is linked or unlinked."""
    return f"wallets:{account_id}"


class WalletService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_account(self, account_id: uuid.UUID) -> Sequence[Wallet]:
        query = select(Wallet).where(Wallet.account_id == account_id).order_by(Wallet.verified_at)
        return (await self.session.execute(query)).scalars().all()

    async def _by_address(self, address: str) -> Wallet | None:
        query = select(Wallet).where(func.lower(Wallet.address) == address.lower())
        return (await self.session.execute(query)).scalar_one_or_none()

    async def account_of(self, address: str) -> uuid.UUID | None:
        """The account a wallet is linked to, for a wallet login."""
        wallet = await self._by_address(address)
        return wallet.account_id if wallet is not None else None

    async def link(self, *, account_id: uuid.UUID, message: SiweMessage) -> Wallet:
        """Link the address a verified message was signed by; signing again refreshes it."""
        wallet = await self._by_address(message.address)
        if wallet is not None and wallet.account_id != account_id:
            raise Conflict("This wallet is linked to another account.", reason="wallet-linked")
        if wallet is None:
            wallet = Wallet(account_id=account_id, address=message.address)
            self.session.add(wallet)
        wallet.chain_id = message.chain_id
        wallet.verified_at = utcnow()
        await self.session.flush()
        return wallet

    async def unlink(self, *, account_id: uuid.UUID, address: str) -> None:
        removed = await self.session.execute(
            delete(Wallet)
            .where(Wallet.account_id == account_id, func.lower(Wallet.address) == address.lower())
            .returning(Wallet.id)
        )
        if removed.first() is None:
            raise NotFound("No such wallet on this account.")

    async def linked_addresses(self, account_id: uuid.UUID) -> list[str]:
        query = select(Wallet.address).where(Wallet.account_id == account_id)
        return list((await self.session.execute(query)).scalars())

    async def linked_by_account(
        self, account_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[str]]:
        """The linked addresses of several accounts in one query (a list of applications)."""
        query = select(Wallet.account_id, Wallet.address).where(
            Wallet.account_id.in_(set(account_ids))
        )
        linked: dict[uuid.UUID, list[str]] = {}
        for account_id, address in await self.session.execute(query):
            linked.setdefault(account_id, []).append(address)
        return linked
