"""PostgreSQL NOTIFY on a pooled connection: how the listeners without Redis (live updates,
cache invalidation) are woken in every process."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


async def notify(engine: AsyncEngine, channel: str, payload: str) -> None:
    """Send ``payload`` to the listeners of ``channel``, in a transaction of its own (delivered
    when it commits). Raises what the database or the pool raises: the caller decides."""
    async with engine.connect() as connection:
        await connection.execute(_NOTIFY, {"channel": channel, "payload": payload})
        await connection.commit()
