"""RTO and RPO of a logical backup and restore on this machine, step by step, through the
command line an operator runs.

    .venv/bin/python bench/backup_restore.py [--server postgresql://postgres@127.0.0.1:5432/postgres]
        [--rows 1000000] [--encrypt] [--verify]

It builds a database of its own (migrated, `chainconsult demo-data`, then --rows more rows,
half notifications and half audit log entries, with their indexes), backs it up with
`chainconsult backup` into a directory, drops the database, creates it empty again and
restores it with `chainconsult restore ID --yes`, timing each step; --verify also times
`chainconsult backup verify` (the restore drill). `--rows 0` measures the demo data alone.
The database and the backups are deleted at the end. docs/disaster-recovery.md quotes the
output."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

EXTRA_ROWS = """
WITH ids AS (SELECT array_agg(id ORDER BY id) AS all_ids FROM accounts)
INSERT INTO {table} ({names})
SELECT {columns}
FROM generate_series(1, %(count)s) AS g, ids
"""
NOTIFICATION_COLUMNS = "id, recipient_id, kind, payload, created_at, read_at"
NOTIFICATIONS = (
    "gen_random_uuid(), all_ids[1 + g %% cardinality(all_ids)], 'proposal_received', "
    "jsonb_build_object('project', md5(g::text), 'n', g), "
    "now() - make_interval(secs => g), CASE WHEN g %% 3 = 0 THEN now() END"
)
AUDIT_COLUMNS = (
    "id, occurred_at, actor_id, action, resource_type, resource_id, ip, user_agent, details"
)
AUDIT = (
    "gen_random_uuid(), now() - make_interval(secs => g), all_ids[1 + g %% cardinality(all_ids)], "
    "'project.viewed', 'project', md5(g::text), '203.0.113.' || (g %% 250), "
    "'Mozilla/5.0 (bench)', jsonb_build_object('n', g)"
)


class Steps:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str]] = []

    def timed(self, name: str, note: str = "") -> _Timer:
        return _Timer(self, name, note)


class _Timer:
    def __init__(self, steps: Steps, name: str, note: str) -> None:
        self.steps, self.name, self.note = steps, name, note

    def __enter__(self) -> _Timer:
        self.started = time.perf_counter()
        print(f"... {self.name}", file=sys.stderr, flush=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.steps.rows.append((self.name, time.perf_counter() - self.started, self.note))


def cli(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "chainconsult", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"chainconsult {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def sql_run(url: str, statement: str, params: dict[str, object] | None = None) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)  # type: ignore[arg-type]
        return cursor.fetchone() if cursor.description else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows on top of the demo data")
    parser.add_argument("--encrypt", action="store_true", help="encrypt to an age recipient")
    parser.add_argument("--verify", action="store_true", help="also time `backup verify`")
    args = parser.parse_args()

    name = f"bench_backup_{uuid.uuid4().hex[:8]}"
    url = make_url(args.server).set(database=name).render_as_string(hide_password=False)
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    env = {
        "DATABASE_URL": url,
        "SECRET_KEY": "b" * 40,
        "REDIS_URL": "",
        "CHAINCONSULT_DATA_DIR": str(work / "var"),
        "BACKUP_URL": f"file://{work}/store",
    }
    if args.encrypt:
        import pyrage

        identity = pyrage.x25519.Identity.generate()
        (work / "backup.key").write_text(f"{identity}\n")
        env["BACKUP_ENCRYPTION_RECIPIENT"] = str(identity.to_public())
    identity_args = ["--identity", str(work / "backup.key")] if args.encrypt else []
    steps = Steps()
    load_before = os.getloadavg()
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    try:
        with steps.timed("build: migrate + demo-data + extra rows"):
            sql_run(args.server, create.as_string())
            cli("migrate", env=env)
            cli("demo-data", env=env)
            half = args.rows // 2
            for table, names, columns, count in (
                ("notifications", NOTIFICATION_COLUMNS, NOTIFICATIONS, half),
                ("audit_log", AUDIT_COLUMNS, AUDIT, args.rows - half),
            ):
                if count:
                    statement = EXTRA_ROWS.format(table=table, names=names, columns=columns)
                    sql_run(url, statement, {"count": count})
            sql_run(url, "VACUUM ANALYZE")
        size = sql_run(url, "SELECT pg_database_size(current_database())")
        rows = sum(
            int(sql_run(url, f"SELECT count(*) FROM {table}")[0])  # type: ignore[index]
            for table in (
                "accounts",
                "expert_profiles",
                "projects",
                "proposals",
                "reviews",
                "notifications",
                "audit_log",
                "expert_applications",
            )
        )
        with steps.timed("backup (chainconsult backup)") as timer:
            out = cli("backup", env=env)
            timer.note = out.strip()
        backup_id = out.split()[1].rstrip(":")
        if args.verify:
            with steps.timed("verify (chainconsult backup verify: restore drill)"):
                cli("backup", "verify", backup_id, *identity_args, env=env)
        with steps.timed("lose the database: drop and create it empty"):
            sql_run(args.server, drop.as_string())
            sql_run(args.server, create.as_string())
        with steps.timed("restore (chainconsult restore --yes)") as timer:
            out = cli("restore", backup_id, "--yes", *identity_args, env=env)
            timer.note = out.strip()
    finally:
        sql_run(args.server, drop.as_string())
        dump_size = sum(p.stat().st_size for p in (work / "store").rglob("*") if p.is_file())
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()

    print(
        f"\nrows in the main tables: {rows:,}; database size: {int(size[0]) / 1e6:.0f} MB; "  # type: ignore[index]
        f"backup size: {dump_size / 1e6:.1f} MB{' (encrypted)' if args.encrypt else ''}"
    )
    print(
        f"cores: {os.cpu_count()}; load average (1, 5, 15 min) before: "
        f"{', '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{', '.join(f'{x:.2f}' for x in load_after)}\n"
    )
    print("| step | seconds | output |")
    print("|---|---:|---|")
    for step, seconds, note in steps.rows:
        print(f"| {step} | {seconds:.1f} | {note} |")
    restore = sum(s for n, s, _ in steps.rows if n.startswith(("lose", "restore")))
    print(f"\nRTO (database gone -> restored, checked, analyzed): {restore:.1f} s")


if __name__ == "__main__":
    main()
