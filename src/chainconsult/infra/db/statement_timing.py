"""Every SQL statement timed through SQLAlchemy's cursor events: its duration goes to
``db_query_duration_seconds``; one slower than SLOW_QUERY_MS is counted in
``db_slow_queries_total``, logged as one structured line (normalized SQL, duration, request
id; never the parameters, which may hold personal data) and kept in a bounded per-process
top-N list for detailed health. ``pg_stat_statements`` adds the server-wide view when the
server has it loaded."""

from __future__ import annotations

import datetime as dt
import re
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.infra.monitoring.metrics import db_query_duration_seconds, db_slow_queries_total

log = structlog.get_logger("chainconsult.db")

_MAX_SQL_CHARS = 2000
_STARTED = "chainconsult_statement_started"

_STRING = re.compile(r"'(?:[^']|'')*'")
_PLACEHOLDER = re.compile(r"%\(\w+\)s|%s|\$\d+|__\[POSTCOMPILE_\w+\]")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?\b")
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_SPACE = re.compile(r"\s+")


def normalize_sql(statement: str) -> str:
    """One spelling per query shape: literals and placeholders become ``?``, lists of them
    ``(...)``, whitespace one space. Statements that differ only in values group together."""
    sql = _STRING.sub("?", statement)
    sql = _PLACEHOLDER.sub("?", sql)
    sql = _NUMBER.sub("?", sql)
    sql = _LIST.sub("(...)", sql)
    sql = _SPACE.sub(" ", sql).strip()
    return sql if len(sql) <= _MAX_SQL_CHARS else sql[:_MAX_SQL_CHARS] + "..."


@dataclass(slots=True)
class SlowStatement:
    """One query shape that crossed SLOW_QUERY_MS in this process."""

    sql: str
    count: int
    total_ms: float
    max_ms: float
    last_ms: float
    last_seen: dt.datetime
    last_request_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "sql": self.sql,
            "count": self.count,
            "duration_ms": round(self.max_ms, 2),
            "mean_ms": round(self.total_ms / self.count, 2),
            "max_ms": round(self.max_ms, 2),
            "last_ms": round(self.last_ms, 2),
            "at": self.last_seen.isoformat(),
            "last_request_id": self.last_request_id,
        }


class SlowQueryLog:
    """The slowest query shapes seen by this process, bounded so a flood of distinct
    statements cannot grow memory: when full, a new shape displaces the one whose worst run
    was fastest, if it was slower than that."""

    def __init__(self, *, threshold_ms: float, capacity: int = 100) -> None:
        self.threshold_ms = threshold_ms
        self.capacity = capacity
        self._entries: dict[str, SlowStatement] = {}

    def record(self, sql: str, duration_ms: float, request_id: str | None) -> None:
        now = dt.datetime.now(dt.UTC)
        entry = self._entries.get(sql)
        if entry is not None:
            entry.count += 1
            entry.total_ms += duration_ms
            entry.max_ms = max(entry.max_ms, duration_ms)
            entry.last_ms = duration_ms
            entry.last_seen = now
            entry.last_request_id = request_id
            return
        if len(self._entries) >= self.capacity:
            fastest = min(self._entries.values(), key=lambda item: item.max_ms)
            if fastest.max_ms >= duration_ms:
                return
            del self._entries[fastest.sql]
        self._entries[sql] = SlowStatement(
            sql, 1, duration_ms, duration_ms, duration_ms, now, request_id
        )

    def top(self, limit: int = 10) -> list[SlowStatement]:
        return sorted(self._entries.values(), key=lambda item: item.max_ms, reverse=True)[:limit]

    def clear(self) -> None:
        self._entries.clear()


_logs: weakref.WeakKeyDictionary[Engine, SlowQueryLog] = weakref.WeakKeyDictionary()


def install_statement_timing(engine: AsyncEngine, *, slow_query_ms: float) -> SlowQueryLog:
    """Time every statement of ``engine``; returns the engine's slow-query list."""
    slow_log = SlowQueryLog(threshold_ms=slow_query_ms)
    sync_engine = engine.sync_engine
    _logs[sync_engine] = slow_log

    def finished(statement: str, started: float) -> None:
        elapsed = time.perf_counter() - started
        db_query_duration_seconds.observe(elapsed)
        duration_ms = elapsed * 1000
        if duration_ms < slow_log.threshold_ms:
            return
        db_slow_queries_total.inc()
        sql = normalize_sql(statement)
        # SQLAlchemy runs this in a greenlet that shares the request's contextvars.
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        slow_log.record(sql, duration_ms, request_id)
        log.warning(
            "slow_query",
            sql=sql,
            duration_ms=round(duration_ms, 2),
            threshold_ms=slow_log.threshold_ms,
        )

    # One slot per connection, not a stack: a connection runs one statement at a time, and
    # a statement abandoned by a cancelled task leaves nothing behind to grow.
    @event.listens_for(sync_engine, "before_cursor_execute")
    def _before(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        conn.info[_STARTED] = time.perf_counter()

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _after(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        started = conn.info.pop(_STARTED, None)
        if started is not None:
            finished(statement, started)

    @event.listens_for(sync_engine, "handle_error")
    def _failed(context: ExceptionContext) -> None:
        # A statement cancelled by statement_timeout is the slowest kind: count it too.
        conn = context.connection
        started = conn.info.pop(_STARTED, None) if conn is not None else None
        if started is not None and context.statement is not None:
            finished(context.statement, started)

    return slow_log


def slow_queries(engine: AsyncEngine, limit: int = 10) -> list[dict[str, Any]]:
    """This process's slowest query shapes, worst first: for detailed health."""
    slow_log = _logs.get(engine.sync_engine)
    return [] if slow_log is None else [entry.as_dict() for entry in slow_log.top(limit)]


def slow_query_provider(engine: AsyncEngine) -> Callable[[int], Awaitable[list[dict[str, Any]]]]:
    """For detailed health: ``await provider(limit)`` gives this process's slowest query
    shapes (``sql``, ``duration_ms`` = worst run, ``at`` = last seen, ...), or, before this
    process has seen one, the server-wide worst from pg_stat_statements when available."""

    async def provider(limit: int) -> list[dict[str, Any]]:
        local = slow_queries(engine, limit)
        if local:
            return local
        slow_log = _logs.get(engine.sync_engine)
        threshold = slow_log.threshold_ms if slow_log is not None else 0.0
        server = await server_slowest_statements(engine, limit)
        return [
            {**row, "duration_ms": row["mean_ms"], "at": None}
            for row in server or []
            if row["max_ms"] >= threshold
        ]

    return provider


# PostgreSQL 13+ column names. Only this database's statements, by total time spent.
_PG_STAT_STATEMENTS = text(
    """
    SELECT query, calls, total_exec_time, mean_exec_time, max_exec_time, rows
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
    ORDER BY total_exec_time DESC
    LIMIT :limit
    """
)
_HAS_PG_STAT_STATEMENTS = text(
    """
    SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')
       AND current_setting('shared_preload_libraries') LIKE '%pg_stat_statements%'
    """
)


async def server_slowest_statements(
    engine: AsyncEngine, limit: int = 10
) -> list[dict[str, Any]] | None:
    """The statements this database spent most time on, across every process and since the
    statistics were last reset, from ``pg_stat_statements``; None when the server does not
    have it (it must be in shared_preload_libraries and created in this database)."""
    async with engine.connect() as conn:
        if not (await conn.execute(_HAS_PG_STAT_STATEMENTS)).scalar():
            return None
        rows = (await conn.execute(_PG_STAT_STATEMENTS, {"limit": limit})).mappings().all()
    return [
        {
            "sql": normalize_sql(row["query"]),
            "calls": row["calls"],
            "total_ms": round(row["total_exec_time"], 2),
            "mean_ms": round(row["mean_exec_time"], 2),
            "max_ms": round(row["max_exec_time"], 2),
            "rows": row["rows"],
        }
        for row in rows
    ]
