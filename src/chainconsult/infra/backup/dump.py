"""A consistent logical dump: pg_dump's custom format, taken in a snapshot this module
exports, so that the row counts of the manifest are those of the dump, exactly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from chainconsult.infra.backup.libpq import database_name, program_args, run, table_ticks
from chainconsult.infra.backup.progress import Progress, silent
from chainconsult.infra.backup.tools import PgTools, client_tools

LOCK_WAIT = "120s"
"""How long pg_dump waits for its shared locks (a running migration holds exclusive ones)
before it gives up, instead of hanging."""

USER_TABLES = """
    SELECT n.nspname, c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
    ORDER BY 1, 2
"""


@dataclass(frozen=True, slots=True)
class DatabaseFacts:
    server_version: str
    schema_revision: str | None
    row_counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class DumpResult:
    database: str
    taken_at: dt.datetime
    facts: DatabaseFacts
    tools: PgTools


def server_major(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    return conn.info.server_version // 10000


def read_facts(conn: psycopg.Connection[tuple[object, ...]]) -> DatabaseFacts:
    """Row counts per table and the Alembic revision, as the connection's snapshot sees them."""
    counts: dict[str, int] = {}
    for schema, table in conn.execute(USER_TABLES).fetchall():
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(str(schema)), sql.Identifier(str(table))
        )
        row = conn.execute(query).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0  # type: ignore[call-overload]
    revision = None
    if conn.execute("SELECT to_regclass('alembic_version')").fetchone() != (None,):
        found = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = str(found[0]) if found else None
    version = conn.execute("SHOW server_version").fetchone()
    return DatabaseFacts(str(version[0]) if version else "?", revision, counts)


def dump_database(
    url: str,
    target: Path,
    *,
    progress: Progress = silent,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> DumpResult:
    """Write the database of the libpq ``url`` to ``target`` (custom format)."""
    conninfo, env = program_args(url)
    with psycopg.connect(url, autocommit=True) as conn:
        # The snapshot lives as long as this transaction; pg_dump adopts it.
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        exported = conn.execute("SELECT pg_export_snapshot()").fetchone()
        taken_at = clock()
        facts = read_facts(conn)
        tools = client_tools(server_major(conn))
        run(
            [
                tools.program("pg_dump"),
                "--format=custom",
                "--verbose",
                "--no-password",
                f"--lock-wait-timeout={LOCK_WAIT}",
                f"--snapshot={exported[0] if exported else ''}",
                f"--file={target}",
                f"--dbname={conninfo}",
            ],
            env=env,
            on_line=table_ticks("dump", len(facts.row_counts), progress),
            what="pg_dump",
        )
        conn.execute("COMMIT")
    return DumpResult(database_name(url), taken_at, facts, tools)
