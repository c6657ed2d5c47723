"""Follows one contract's logs: applies each confirmed log exactly once and undoes what a
reorganisation took back.

One ``step`` runs in the caller's transaction: it locks the follower's cursor row (so two
workers never follow the same contract at once), checks that the cursor's block is still on
the chain (by hash), rewinds to the newest block it remembers that still is, then reads the
logs of the next confirmed blocks and records them in ``chain_events`` (primary key: tx hash
and log index). The handler's effects, the ledger rows and the new cursor commit together, so
a worker killed at any point leaves either all of a step or none of it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eth_utils.abi import event_abi_to_log_topic
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from web3 import Web3
from web3.types import LogReceipt

from chainconsult.infra.chain.models import ChainBlock, ChainCursor, ChainEvent
from chainconsult.infra.chain.rpc import ChainClient, hex_string

# Blocks of hashes kept below the cursor: a reorganisation deeper than this past the
# confirmations rewinds to the start block (slow, still correct).
_KEEP_BLOCKS = 2048


@dataclass(frozen=True, slots=True)
class AppliedEvent:
    name: str
    args: Mapping[str, Any]
    subject: str
    tx_hash: str
    log_index: int
    block_number: int


class EventHandler(Protocol):
    async def applied(self, session: AsyncSession, events: Sequence[AppliedEvent]) -> None:
        """New confirmed events, in chain order (each seen for the first time)."""

    async def reverted(self, session: AsyncSession, events: Sequence[AppliedEvent]) -> None:
        """Events a reorganisation removed, newest first; their ledger rows are gone."""


def _json(value: Any) -> Any:
    # uint256 exceeds JSON's safe integers: decimal strings; bytes as 0x-hex.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return value


class EventFollower:
    def __init__(
        self,
        *,
        name: str,
        client: ChainClient,
        address: str,
        abi: Sequence[Mapping[str, Any]],
        confirmations: int,
        handler: EventHandler,
        subject: Callable[[str, Mapping[str, Any]], str],
        start_block: int = 0,
        max_blocks: int = 1000,
    ) -> None:
        self.name = name
        self.client = client
        self.address = address
        self.confirmations = confirmations
        self.handler = handler
        self.subject = subject
        self.start_block = start_block
        self.max_blocks = max_blocks
        self._contract = Web3().eth.contract(address=Web3.to_checksum_address(address), abi=abi)
        self._events = {
            "0x" + event_abi_to_log_topic(item).hex(): str(item["name"])  # type: ignore[arg-type]
            for item in abi
            if item.get("type") == "event"
        }

    async def step(self, session: AsyncSession) -> tuple[int, bool]:
        """One batch in the caller's transaction: (events applied or undone, caught up)."""
        cursor = await self._cursor(session)
        undone = await self._rewind_if_reorganised(session, cursor)
        head = await self.client.head()
        confirmed = head - self.confirmations + 1
        if cursor.block_number >= confirmed:
            return undone, True
        first = cursor.block_number + 1
        last = min(confirmed, cursor.block_number + self.max_blocks)
        logs = await self.client.logs(self.address, first, last)
        last_hash = await self.client.block_hash(last)
        hashes = await self._hashes_of(logs)
        if last_hash is None or hashes is None:
            # The chain moved under the reads; the next step sees it settled.
            return undone, False
        events = [self._decode(log) for log in logs]
        new = await self._record(session, [e for e in events if e is not None])
        if new:
            await self.handler.applied(session, new)
        hashes[last] = last_hash
        for number, block_hash in hashes.items():
            await session.execute(
                insert(ChainBlock)
                .values(follower=self.name, block_number=number, block_hash=block_hash)
                .on_conflict_do_update(
                    index_elements=["follower", "block_number"], set_={"block_hash": block_hash}
                )
            )
        cursor.block_number, cursor.block_hash = last, last_hash
        await session.execute(
            delete(ChainBlock).where(
                ChainBlock.follower == self.name,
                ChainBlock.block_number < last - _KEEP_BLOCKS,
            )
        )
        return undone + len(new), last >= confirmed

    async def _cursor(self, session: AsyncSession) -> ChainCursor:
        await session.execute(
            insert(ChainCursor)
            .values(follower=self.name, block_number=self.start_block - 1, block_hash=None)
            .on_conflict_do_nothing()
        )
        cursor = await session.scalar(
            select(ChainCursor)
            .where(ChainCursor.follower == self.name)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert cursor is not None
        return cursor

    async def _rewind_if_reorganised(self, session: AsyncSession, cursor: ChainCursor) -> int:
        if cursor.block_hash is None:
            return 0
        if await self.client.block_hash(cursor.block_number) == cursor.block_hash:
            return 0
        remembered = await session.execute(
            select(ChainBlock.block_number, ChainBlock.block_hash)
            .where(ChainBlock.follower == self.name, ChainBlock.block_number < cursor.block_number)
            .order_by(ChainBlock.block_number.desc())
        )
        ancestor, ancestor_hash = self.start_block - 1, None
        for number, block_hash in remembered:
            if await self.client.block_hash(number) == block_hash:
                ancestor, ancestor_hash = number, block_hash
                break
        removed = (
            await session.scalars(
                delete(ChainEvent)
                .where(ChainEvent.follower == self.name, ChainEvent.block_number > ancestor)
                .returning(ChainEvent)
            )
        ).all()
        await session.execute(
            delete(ChainBlock).where(
                ChainBlock.follower == self.name, ChainBlock.block_number > ancestor
            )
        )
        cursor.block_number, cursor.block_hash = ancestor, ancestor_hash
        events = sorted(
            (_applied(row) for row in removed),
            key=lambda e: (e.block_number, e.log_index),
            reverse=True,
        )
        if events:
            await self.handler.reverted(session, events)
        return len(events)

    async def _hashes_of(self, logs: Sequence[LogReceipt]) -> dict[int, str] | None:
        """The hash of each block with logs, checked against the node's canonical chain."""
        hashes: dict[int, str] = {}
        for log in logs:
            number, block_hash = int(log["blockNumber"]), hex_string(log["blockHash"])
            if hashes.setdefault(number, block_hash) != block_hash:
                return None
        for number, block_hash in hashes.items():
            if await self.client.block_hash(number) != block_hash:
                return None
        return hashes

    def _decode(self, log: LogReceipt) -> ChainEvent | None:
        topics = log["topics"]
        name = self._events.get(hex_string(topics[0])) if topics else None
        if name is None:
            return None
        try:
            decoded = self._contract.events[name]().process_log(log)
        except Exception:
            return None
        args = {key: _json(value) for key, value in decoded["args"].items()}
        return ChainEvent(
            follower=self.name,
            tx_hash=hex_string(log["transactionHash"]),
            log_index=int(log["logIndex"]),
            block_number=int(log["blockNumber"]),
            block_hash=hex_string(log["blockHash"]),
            name=name,
            subject=self.subject(name, args),
            args=args,
        )

    async def _record(
        self, session: AsyncSession, events: Sequence[ChainEvent]
    ) -> list[AppliedEvent]:
        """Insert the ledger rows; the ones inserted now are the ones to apply."""
        new: list[AppliedEvent] = []
        for event in events:
            inserted = await session.scalar(
                insert(ChainEvent)
                .values(
                    follower=event.follower,
                    tx_hash=event.tx_hash,
                    log_index=event.log_index,
                    block_number=event.block_number,
                    block_hash=event.block_hash,
                    name=event.name,
                    subject=event.subject,
                    args=event.args,
                )
                .on_conflict_do_nothing()
                .returning(ChainEvent.log_index)
            )
            if inserted is not None:
                new.append(_applied(event))
        return new


def _applied(row: ChainEvent) -> AppliedEvent:
    return AppliedEvent(
        name=row.name,
        args=row.args,
        subject=row.subject,
        tx_hash=row.tx_hash,
        log_index=row.log_index,
        block_number=row.block_number,
    )
