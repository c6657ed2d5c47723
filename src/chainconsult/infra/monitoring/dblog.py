"""LOG_TO_DATABASE: warnings and errors kept in the ``log_entries`` table for the dashboard.

A logging handler only appends to a bounded in-memory buffer (never blocks the request, never
touches the database); a background task writes the buffer in batches. When the database is
down the batch stays buffered (the oldest lines drop first once the buffer is full) and is
written when it comes back. structlog routes through the standard library here (see
logging.py), so one handler on the root logger sees every line."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import traceback
from collections import deque
from typing import Any

import orjson
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.infra.db.declarative import utcnow
from chainconsult.infra.monitoring.models import LogEntry

_SELF = "chainconsult.dblog"
# Lines about the database itself while it is down would only refill the buffer.
_SKIPPED_PREFIXES = (_SELF, "sqlalchemy.pool", "psycopg.pool")
BATCH_SIZE = 500
RETENTION = dt.timedelta(days=14)
"""Stored lines older than this are deleted (hourly, by every writer; the delete is idempotent).
Once job support lands this belongs in a periodic job."""
PRUNE_EVERY_S = 3600.0


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(orjson.dumps(value, default=str))
    return result


class DatabaseLogHandler(logging.Handler):
    def __init__(self, *, capacity: int = 10_000) -> None:
        super().__init__(level=logging.WARNING)
        self.buffer: deque[dict[str, Any]] = deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_SKIPPED_PREFIXES):
            return
        try:
            context: dict[str, Any]
            if isinstance(record.msg, dict):
                context = dict(record.msg)
                event = str(context.pop("event", ""))
            else:
                context = {}
                event = record.getMessage()
            for key in ("level", "logger", "timestamp", "_record", "_from_structlog"):
                context.pop(key, None)
            if record.exc_info and record.exc_info[0] is not None:
                context["exception"] = "".join(traceback.format_exception(*record.exc_info))[-4000:]
            request_id = context.pop("request_id", None)
            self.buffer.append(
                {
                    "created_at": utcnow(),
                    "level": record.levelname.lower(),
                    "logger": record.name[:128],
                    "event": event[:2000],
                    "request_id": str(request_id)[:128] if request_id else None,
                    "context": _jsonable(context),
                }
            )
        except Exception:
            self.handleError(record)


class DatabaseLogWriter:
    def __init__(
        self, engine: AsyncEngine, handler: DatabaseLogHandler, *, every_s: float = 1.0
    ) -> None:
        self.engine = engine
        self.handler = handler
        self.every_s = every_s
        self.stopping = asyncio.Event()

    async def flush(self) -> int:
        buffer = self.handler.buffer
        written = 0
        while buffer:
            batch = [buffer.popleft() for _ in range(min(BATCH_SIZE, len(buffer)))]
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(insert(LogEntry), batch)
            except Exception:
                # Back to the front, in order; the deque's bound drops the oldest if it overflows.
                buffer.extendleft(reversed(batch))
                logging.getLogger(_SELF).debug("log_flush_failed")
                return written
            written += len(batch)
        return written

    async def prune(self) -> int:
        """Delete lines past the retention period; 0 when the database is unreachable."""
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    delete(LogEntry).where(LogEntry.created_at < utcnow() - RETENTION)
                )
        except Exception:
            logging.getLogger(_SELF).debug("log_prune_failed")
            return 0
        return int(result.rowcount)

    async def run(self) -> None:
        next_prune = 0.0
        loop = asyncio.get_running_loop()
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.every_s)
            await self.flush()
            if loop.time() >= next_prune:
                await self.prune()
                next_prune = loop.time() + PRUNE_EVERY_S

    async def stop(self, task: asyncio.Task[None]) -> None:
        """The last flush happens in ``run`` itself: a task cancelled mid-insert would make
        the driver wait for the server to acknowledge the cancel."""
        self.stopping.set()
        done, _ = await asyncio.wait({task}, timeout=3.0)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
