"""The platform's conversations with the chain: following the contract's confirmed events
into the milestones, sending the arbiter's resolve transaction, and reconciling the
database's view with the contract's."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, cast

import structlog
from eth_account import Account
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from web3.types import TxParams

from chainconsult.config import EscrowSettings
from chainconsult.escrow.contract import EscrowContract, chain_id_of, escrow_abi
from chainconsult.escrow.projection import (
    MilestoneProjection,
    TerminationTimeReader,
    subject_of,
)
from chainconsult.escrow.service import follower_name
from chainconsult.infra.chain.follower import EventFollower
from chainconsult.infra.chain.models import ChainCursor, ChainReconciliation
from chainconsult.infra.chain.rpc import ChainClient
from chainconsult.infra.db.session import run_after_commit
from chainconsult.infra.monitoring.metrics import escrow_reconciliation_differences
from chainconsult.models.escrow import Milestone, MilestoneStatus

log = structlog.get_logger(__name__)

# pg_advisory_xact_lock key: one arbiter transaction is signed at a time, so two workers
# never take the same nonce.
_ARBITER_NONCE_LOCK = 0x45534352  # "ESCR"


class ChainMismatch(Exception):
    """ESCROW_RPC_URL answers for another chain than ESCROW_CHAIN_ID."""


def chain_client(settings: EscrowSettings) -> ChainClient:
    assert settings.rpc_url is not None
    return ChainClient(settings.rpc_url.get_secret_value())


async def follow_chain(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: EscrowSettings,
    client: ChainClient,
    *,
    max_steps: int = 100,
) -> int:
    """Apply every confirmed escrow event not applied yet, one transaction per batch of
    blocks; returns how many events were applied or undone."""
    if await client.chain_id() != settings.chain_id:
        raise ChainMismatch(f"the RPC endpoint is not chain {settings.chain_id}")
    assert settings.contract is not None
    name = follower_name(settings)
    follower = EventFollower(
        name=name,
        client=client,
        address=settings.contract,
        abi=escrow_abi(),
        confirmations=settings.confirmations,
        handler=MilestoneProjection(name, termination_time_reader(settings, client)),
        subject=subject_of,
        start_block=settings.start_block,
    )
    total = 0
    for _ in range(max_steps):
        async with sessionmaker() as session:
            async with session.begin():
                changed, caught_up = await follower.step(session)
            await run_after_commit(session)
        total += changed
        if caught_up:
            break
    return total


def termination_time_reader(settings: EscrowSettings, client: ChainClient) -> TerminationTimeReader:
    async def read(project_id: uuid.UUID, block: int) -> int:
        terms = await _project_terms(settings, client, project_id, block=block)
        return int(terms[3])

    return read


async def _project_terms(
    settings: EscrowSettings, client: ChainClient, project_id: uuid.UUID, *, block: int
) -> tuple[str, str, str, int]:
    """The contract's (client, payee, token, terminationTime) of a project at ``block``."""
    assert settings.contract is not None
    terms = await client.call(
        settings.contract, escrow_abi(), "projects", chain_id_of(project_id), block=block
    )
    return cast(tuple[str, str, str, int], tuple(terms))


def arbiter_key(path: Path) -> str:
    """The arbiter's private key from its file (hex, 0x optional); never logged."""
    return path.read_text().strip()


async def send_resolution(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: EscrowSettings,
    client: ChainClient,
    milestone_id: uuid.UUID,
) -> str:
    """Sign and send the arbiter's resolve of a disputed milestone; returns the tx hash, or
    what was skipped. A transaction already known to the node is not sent again; one that
    reverts (already resolved on chain) fails the attempt and the job retries until the
    watcher has applied the resolution."""
    assert settings.arbiter_key_file is not None
    arbiter = Account.from_key(arbiter_key(settings.arbiter_key_file))
    async with sessionmaker() as session, session.begin():
        await session.execute(select(func.pg_advisory_xact_lock(_ARBITER_NONCE_LOCK)))
        milestone = await session.scalar(
            select(Milestone).where(Milestone.id == milestone_id).with_for_update()
        )
        if (
            milestone is None
            or milestone.status != MilestoneStatus.disputed
            or milestone.resolution_share_bps is None
        ):
            return "skipped: not a disputed milestone awaiting resolution"
        if milestone.resolution_tx_hash is not None and await client.transaction_known(
            milestone.resolution_tx_hash
        ):
            return f"pending: {milestone.resolution_tx_hash}"
        call = EscrowContract(settings).resolve(
            milestone.project_id,
            milestone.id,
            milestone.resolution_share_bps,
            milestone.resolution_note or "",
        )
        tx: dict[str, Any] = {
            "from": arbiter.address,
            "to": call["to"],
            "data": call["data"],
            "value": 0,
            "chainId": settings.chain_id,
        }
        gas = await client.estimate_gas(cast(TxParams, tx))
        tx["gas"] = gas + gas // 5
        tx["gasPrice"] = await client.gas_price()
        tx["nonce"] = await client.pending_nonce(arbiter.address)
        signed = arbiter.sign_transaction(tx)
        tx_hash = await client.send_raw(signed.raw_transaction)
        milestone.resolution_tx_hash = tx_hash
        log.info("escrow_resolution_sent", milestone_id=str(milestone.id), tx_hash=tx_hash)
        return tx_hash


# The contract's Status enum, by position, as the platform's statuses.
_CHAIN_STATUS = ("draft", "funded", "released", "disputed", "resolved", "refunded")


async def fee_mismatches(settings: EscrowSettings, client: ChainClient, *, block: int) -> int:
    """Whether the deployed contract takes the fee the settings say (PLATFORM_FEE_BPS to
    PLATFORM_FEE_ADDRESS): the contract fixed both at deployment and is what actually pays, so
    settings that differ misdescribe every payout. Each differing value is logged as critical
    and counted as a reconciliation difference (the alert escrow_reconciliation_difference)."""
    assert settings.contract is not None
    fee_bps = await client.call(settings.contract, escrow_abi(), "feeBps", block=block)
    recipient = await client.call(settings.contract, escrow_abi(), "feeRecipient", block=block)
    differing = []
    if fee_bps != settings.platform_fee_bps:
        differing.append(("PLATFORM_FEE_BPS", str(settings.platform_fee_bps), str(fee_bps)))
    # A contract without a fee pays nobody: its recipient does not matter.
    if fee_bps and str(recipient).lower() != (settings.platform_fee_address or "").lower():
        differing.append(("PLATFORM_FEE_ADDRESS", str(settings.platform_fee_address), recipient))
    for setting, configured, deployed in differing:
        log.critical(
            "escrow_reconciliation_difference",
            reason="fee settings differ from the deployed contract",
            setting=setting,
            configured=configured,
            contract_value=deployed,
            contract=settings.contract,
        )
    return len(differing)


async def reconcile(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: EscrowSettings,
    client: ChainClient,
) -> int:
    """Compare the fee settings and every milestone the platform handed deposit terms for with
    the contract's record at the last confirmed block; log each difference as critical,
    record the count (``_record``) and return it."""
    async with sessionmaker() as session:
        block = await session.scalar(
            select(ChainCursor.block_number).where(ChainCursor.follower == follower_name(settings))
        )
        milestones = (
            await session.scalars(select(Milestone).where(Milestone.token_address.is_not(None)))
        ).all()
    assert settings.contract is not None
    if block is None or block < 0:
        # Before the watcher's first step there is no confirmed block and no milestone to
        # compare; the fee, fixed at deployment, is read at the head.
        differences = await fee_mismatches(settings, client, block=await client.head())
        return await _record(sessionmaker, settings, differences)
    differences = await fee_mismatches(settings, client, block=block)
    for milestone in milestones:
        amount, status = await client.call(
            settings.contract,
            escrow_abi(),
            "milestones",
            chain_id_of(milestone.project_id),
            chain_id_of(milestone.id),
            block=block,
        )
        expected_amount = int(milestone.amount_units or 0) if status else 0
        terms_differ = bool(status) and await _terms_differ(settings, client, milestone, block)
        if _CHAIN_STATUS[status] != milestone.status or amount != expected_amount or terms_differ:
            differences += 1
            log.critical(
                "escrow_reconciliation_difference",
                milestone_id=str(milestone.id),
                database_status=milestone.status,
                chain_status=_CHAIN_STATUS[status],
                chain_amount_units=str(amount),
                terms_differ=terms_differ,
                block=block,
            )
    return await _record(sessionmaker, settings, differences)


async def _record(
    sessionmaker: async_sessionmaker[AsyncSession], settings: EscrowSettings, differences: int
) -> int:
    """The count into this process's gauge (escrow_reconciliation_differences) and into
    chain_reconciliations, which the alert evaluator of every API process reads: a
    standalone worker's metrics are not the API's."""
    escrow_reconciliation_differences.set(differences)
    follower = follower_name(settings)
    statement = (
        insert(ChainReconciliation)
        .values(follower=follower, differences=differences)
        .on_conflict_do_update(
            index_elements=[ChainReconciliation.follower],
            set_={"differences": differences, "checked_at": func.now()},
        )
    )
    async with sessionmaker() as session:
        await session.execute(statement)
        await session.commit()
    return differences


async def _terms_differ(
    settings: EscrowSettings, client: ChainClient, milestone: Milestone, block: int
) -> bool:
    """Whether the contract holds this milestone under other terms than those the platform
    handed out: another payee, token or termination time (one in the past lets the client
    withdraw what shows as funded)."""
    _client, payee, token, termination = await _project_terms(
        settings, client, milestone.project_id, block=block
    )
    return (
        payee.lower() != (milestone.payout_address or "").lower()
        or token.lower() != (milestone.token_address or "").lower()
        or termination != milestone.termination_time
    )
