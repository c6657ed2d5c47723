"""Loading a dump into a database: atomically, and only over an empty one unless told.

pg_restore writes SQL that psql runs in one transaction, after (with ``replace``) dropping
every schema of the target in that same transaction: a restore that fails half-way, on a bad
archive or a full disk, leaves the target exactly as it was."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg

from chainconsult.infra.backup.dump import DatabaseFacts, read_facts, server_major
from chainconsult.infra.backup.errors import BackupError
from chainconsult.infra.backup.libpq import collect_stderr, program_args, table_ticks
from chainconsult.infra.backup.progress import Progress, silent
from chainconsult.infra.backup.tools import client_tools

_CHUNK = 1 << 16

REPLACE_EVERYTHING = b"""
SET lock_timeout = '30s';
DO $$
DECLARE found record;
BEGIN
  FOR found IN SELECT nspname FROM pg_namespace
      WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', found.nspname);
  END LOOP;
END $$;
CREATE SCHEMA public;
"""
"""Empties the target before the restore. The lock timeout turns a wait on a connected
application into a clear failure (pg_restore's own SET lock_timeout = 0 comes after)."""


@dataclass(frozen=True, slots=True)
class Target:
    """What a restore would overwrite."""

    tables: int
    other_sessions: int


def inspect_target(url: str) -> Target:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
                " AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'"
            ).fetchone()
            sessions = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
    except psycopg.OperationalError as exc:
        raise BackupError(f"cannot connect to the restore target: {exc}") from None
    return Target(int(tables[0]) if tables else 0, int(sessions[0]) if sessions else 0)


def restore_dump(
    dump: Path,
    url: str,
    *,
    replace: bool,
    dumped_with: int,
    tables: int,
    progress: Progress = silent,
) -> DatabaseFacts:
    """Load ``dump`` into the database of ``url`` and return what it then holds."""
    with psycopg.connect(url, autocommit=True) as conn:
        tools = client_tools(server_major(conn), at_least=dumped_with)
    conninfo, env = program_args(url)
    restore_args = [
        tools.program("pg_restore"),
        "--no-owner",
        "--no-privileges",
        "--verbose",
        "--file=-",
        str(dump),
    ]
    psql_args = [
        tools.program("psql"),
        "--no-psqlrc",
        "--quiet",
        "--single-transaction",
        "--set=ON_ERROR_STOP=1",
        f"--dbname={conninfo}",
        "--file=-",
    ]
    with (
        ThreadPoolExecutor(2, thread_name_prefix="restore-stderr") as threads,
        subprocess.Popen(  # noqa: S603 - our own argument list, no shell
            restore_args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as reader,
        subprocess.Popen(  # noqa: S603
            psql_args,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        ) as writer,
    ):
        # Both programs' stderr are drained aside, or a full pipe would stall them.
        read_errors = threads.submit(
            collect_stderr, reader, table_ticks("restore", tables, progress)
        )
        write_errors = threads.submit(collect_stderr, writer, None)
        assert reader.stdout is not None
        assert writer.stdin is not None
        try:
            if replace:
                writer.stdin.write(REPLACE_EVERYTHING)
            while chunk := reader.stdout.read(_CHUNK):
                writer.stdin.write(chunk)
        except BrokenPipeError:
            # psql stopped at an error (ON_ERROR_STOP); its message says which.
            reader.kill()
        reader.wait()
        if reader.returncode == 0:
            writer.stdin.close()  # end of input: psql commits
        else:
            # A truncated script must not be committed: killed, psql's transaction dies
            # with its connection.
            writer.kill()
        writer.wait()
    if reader.returncode != 0 and writer.returncode < 0:
        raise BackupError(
            f"pg_restore failed; nothing was restored: {read_errors.result().summary()}"
        )
    if writer.returncode != 0:
        raise BackupError(
            f"the restore failed and was rolled back: {write_errors.result().summary()}"
        )
    with psycopg.connect(url, autocommit=True) as conn:
        # pg_restore leaves the planner without statistics until autovacuum gets there.
        conn.execute("ANALYZE")
        return read_facts(conn)


def compare(
    expected_counts: dict[str, int], revision: str | None, found: DatabaseFacts
) -> list[str]:
    """What differs between a manifest and a restored database, one line per difference."""
    problems = []
    if found.schema_revision != revision:
        problems.append(f"schema revision {found.schema_revision!r}, expected {revision!r}")
    for table in sorted(set(expected_counts) | set(found.row_counts)):
        want, got = expected_counts.get(table), found.row_counts.get(table)
        if want != got:
            problems.append(f"{table}: {got} rows, expected {want}")
    return problems
