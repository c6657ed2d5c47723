"""Whether an expert's payout wallet may receive escrow funds.

``payout_wallet_verified`` is the escrow's only question about wallets, asked from one place
(EscrowService._verified_payout): the EVM address on the approved expert profile, once the
expert has proved control of it by Sign-In with Ethereum (experts/wallets.py holds that
rule)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.experts.vocabulary import EVM_CHAINS, Chain
from chainconsult.experts.wallets import is_verified_payout_wallet, wallet_problem
from chainconsult.models.experts import ExpertProfile


async def payout_wallet_verified(session: AsyncSession, expert_id: uuid.UUID) -> str | None:
    """The expert's verified EVM payout address, or None when there is none."""
    row = (
        await session.execute(
            select(ExpertProfile.wallet_address, ExpertProfile.wallet_chain).where(
                ExpertProfile.id == expert_id
            )
        )
    ).one_or_none()
    if row is None or row.wallet_address is None or row.wallet_chain is None:
        return None
    try:
        chain = Chain(row.wallet_chain)
    except ValueError:
        return None
    if chain not in EVM_CHAINS or wallet_problem(chain, row.wallet_address) is not None:
        return None
    if not await is_verified_payout_wallet(session, expert_id):
        return None
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address(row.wallet_address))
