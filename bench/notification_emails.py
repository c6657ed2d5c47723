"""What notification emails cost, side by side in one run.

1. Inside the event's transaction: ``NotificationService.notify`` for 1, 10 and 100
   recipients (a new project matching that many experts), as shipped (the rows and their
   jobs in one statement), against the notification rows alone, against one ``defer`` per
   job and against the rows followed by one ``defer_many`` (what notify() did before).
2. In the worker: notification emails per second for one worker process (compose from the
   database, claim the idempotency key, "send" with EMAIL_SERVICE=disabled, record the
   outcome), at concurrency 1 and 10.

Usage (a PostgreSQL server where a scratch database may be created and dropped):
    .venv/bin/python bench/notification_emails.py --server postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence

import psycopg
from psycopg import sql
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.config import load_settings
from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from chainconsult.infra.db.migrate import migrate
from chainconsult.infra.jobs import defer, defer_many
from chainconsult.infra.jobs.worker import run_worker
from chainconsult.infra.monitoring.logging import configure_logging
from chainconsult.models.base import utcnow
from chainconsult.models.notifications import Notification
from chainconsult.notifications.jobs import send_notification_email
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.notifications.service import NotificationService
from chainconsult.schedules import worker_resources

PAYLOAD = {"application_id": str(uuid.uuid4()), "decision": "approved", "note": "ok"}


def reset(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers,"
            " procrastinate_workers, job_failures, email_deliveries, notifications CASCADE"
        )


async def add_accounts(maker: async_sessionmaker[AsyncSession], count: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    async with maker() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO accounts (id, email, password_hash, display_name, role, plan,"
                " is_active) VALUES (:id, :email, 'x', 'Bench Expert', 'expert', 'free', true)"
            ),
            [{"id": account, "email": f"{account}@bench.example"} for account in ids],
        )
    return ids


async def add_rows(session: AsyncSession, recipients: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The notification rows alone, as notify() wrote them before 2026-11-27: one multi-row
    INSERT through the ORM's bulk path."""
    now = utcnow()
    ids = [uuid.uuid4() for _ in recipients]
    kind = NotificationKind.application_decided.value
    await session.execute(
        insert(Notification),
        [
            {"id": note, "recipient_id": to, "kind": kind, "payload": PAYLOAD, "created_at": now}
            for note, to in zip(ids, recipients, strict=True)
        ],
    )
    return ids


async def rows_only(session: AsyncSession, recipients: Sequence[uuid.UUID]) -> None:
    await add_rows(session, recipients)


async def one_defer_each(session: AsyncSession, recipients: Sequence[uuid.UUID]) -> None:
    ids = await add_rows(session, recipients)
    for note in ids:
        await defer(session, send_notification_email, notification_id=str(note))


async def rows_then_defer_many(session: AsyncSession, recipients: Sequence[uuid.UUID]) -> None:
    """What notify() did before 2026-11-27: the rows, then their jobs in a second statement
    through procrastinate's batch_defer_async."""
    ids = await add_rows(session, recipients)
    await defer_many(
        session, send_notification_email, [{"notification_id": str(note)} for note in ids]
    )


async def shipped(session: AsyncSession, recipients: Sequence[uuid.UUID]) -> None:
    await NotificationService(session).notify(
        recipients=recipients, kind=NotificationKind.application_decided, payload=PAYLOAD
    )


async def notify_cost(
    maker: async_sessionmaker[AsyncSession], url: str, accounts: list[uuid.UUID], rounds: int
) -> None:
    variants = {
        "rows only (no email)": rows_only,
        "rows + one defer per job": one_defer_each,
        "rows, then defer_many": rows_then_defer_many,
        "notify() as shipped": shipped,
    }
    print(
        f"notify() inside a transaction, then commit; {rounds} rounds: wall ms p50 / p99 and"
        " the process's CPU ms per transaction (mean)"
    )
    for count in (1, 10, 100):
        recipients = accounts[:count]
        timings: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, float] = dict.fromkeys(variants, 0.0)
        for round_ in range(rounds):
            if round_ % 50 == 0:
                reset(url)
            # Alternating, so every variant sees the same background load.
            for name, variant in variants.items():
                started, cpu_started = time.perf_counter(), time.process_time()
                async with maker() as session, session.begin():
                    await variant(session, recipients)
                timings[name].append((time.perf_counter() - started) * 1000)
                cpu[name] += time.process_time() - cpu_started
        for name, values in timings.items():
            values.sort()
            p99 = values[int(len(values) * 0.99) - 1]
            print(
                f"  {count:>3} recipients  {name:<26}"
                f" p50 {statistics.median(values):7.3f}  p99 {p99:7.3f}"
                f"  CPU {cpu[name] / rounds * 1000:7.3f}"
            )


async def send_rate(settings_env: dict[str, str], url: str, count: int) -> None:
    os.environ.update(settings_env)
    settings = load_settings()
    engine = build_engine(settings.database)
    maker = build_sessionmaker(engine)
    resources = worker_resources(settings, maker)
    accounts = await add_accounts(maker, 100)
    print(f"notification emails, one worker process, {count} per run, EMAIL_SERVICE=disabled")
    for concurrency in (1, 10):
        rates = []
        for _ in range(3):
            reset(url)
            for start in range(0, count, 100):
                async with maker() as session, session.begin():
                    await shipped(session, accounts[: min(100, count - start)])
            started = time.perf_counter()
            await run_worker(
                resources, concurrency=concurrency, wait=False, install_signal_handlers=False
            )
            elapsed = time.perf_counter() - started
            with psycopg.connect(url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM email_deliveries WHERE status = 'dropped'"
                ).fetchone()
            if row is None or row[0] != count:
                raise RuntimeError(f"only {row} of {count} emails were handled")
            rates.append(count / elapsed)
        print(
            f"  concurrency {concurrency:>3} {statistics.median(rates):6.0f} emails/s"
            f"  (runs: {', '.join(f'{rate:.0f}' for rate in rates)})"
        )
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--emails", type=int, default=2000)
    args = parser.parse_args()
    if not args.server:
        sys.exit("--server (or TEST_DATABASE_URL) is required")
    configure_logging("WARNING")
    server = args.server.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"cc_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(server, dbname=name)
    rendered = (
        make_url(server.replace("postgresql://", "postgresql+psycopg://", 1))
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    try:
        migrate(rendered, echo=lambda _line: None)
        env = {
            "DATABASE_URL": rendered,
            "CHAINCONSULT_DATA_DIR": tempfile.mkdtemp(),
            "LOG_LEVEL": "WARNING",
            "EMAIL_SERVICE": "disabled",
        }
        os.environ.update(env)
        settings = load_settings()
        engine = build_engine(settings.database)
        maker = build_sessionmaker(engine)
        print(f"load average {os.getloadavg()[0]:.1f}")
        await notify_cost(maker, url, await add_accounts(maker, 100), args.rounds)
        await engine.dispose()
        await send_rate(env, url, args.emails)
        print(f"load average {os.getloadavg()[0]:.1f}")
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    asyncio.run(main())
