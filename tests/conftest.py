"""Test fixtures: a real PostgreSQL database per test session (TEST_DATABASE_URL's server, else
an embedded one), migrated once and emptied after every test that used it; a real Redis when
one is available (TEST_REDIS_URL, else a private redis-server), otherwise Redis tests skip.
Passwords are hashed at the cheapest argon2id cost (TEST_PASSWORD_HASH), in this process and
in every server process a test starts.

With CHAINCONSULT_REQUIRE_SERVICES=1 (set by .ci/run) a missing service fails the test
instead of skipping it, so CI cannot pass by silently testing less."""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import psycopg
import pytest
from httpx import AsyncClient
from psycopg import sql
from sqlalchemy.engine import make_url

from chainconsult.app import create_app
from chainconsult.config import PasswordHashSettings, Settings, load_settings
from chainconsult.infra.db.migrate import migrate
from chainconsult.infra.monitoring.metrics import escrow_reconciliation_differences
from chainconsult.infra.security.passwords import use_parameters as use_password_hash_parameters
from chainconsult.models import Base
from tests.helpers import serving
from tests.smtp import SmtpSink

REQUIRE_SERVICES = os.environ.get("CHAINCONSULT_REQUIRE_SERVICES") == "1"
TEST_SECRET = "test-secret-key-that-is-long-enough-for-hmac-signing"
# Keys of this run never meet another run's on a shared Redis.
REDIS_PREFIX = f"cctest-{uuid.uuid4().hex[:8]}"
# At RFC 9106's cost a hash takes ~0.2 s of a core and the suite hashes thousands of
# passwords. Set in the environment so that server processes the tests start inherit it;
# tests of the cost itself build their settings without it.
TEST_PASSWORD_HASH = {
    "PASSWORD_HASH_MEMORY_KIB": "8",
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_PARALLELISM": "1",
}
os.environ.update(TEST_PASSWORD_HASH)
use_password_hash_parameters(PasswordHashSettings())


def missing_service(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CHAINCONSULT_REQUIRE_SERVICES=1 a skipped test fails the run: CI must not go
    green by testing less than it claims."""
    if not REQUIRE_SERVICES:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter is not None:
            reporter.write_line(
                f"{len(skipped)} test(s) skipped with CHAINCONSULT_REQUIRE_SERVICES=1: failing",
                red=True,
            )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with a slow test go first, the rest after, each part in its random order.

    Longest first: xdist's workers then end the run on short tests (a worker out of work
    takes the tail of the other's queue) instead of one idling while the other finishes a
    minute-long test. Whole modules move, so their module-scoped fixtures start once."""
    slow = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what is alive once the tests are collected (the imported modules, the collected
    tests) out of the cyclic collector: it never becomes garbage, and a full collection of this
    process walked it for 0.2-0.5 s each time."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session", autouse=True)
def _no_start_up_freeze() -> Iterator[None]:
    """Apps started in tests skip infra/heap.py's start-up freeze: it runs a full collection at
    each start and unfreezes everything, this session's freeze too, at each stop.
    tests/infra/test_heap.py checks the real one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("chainconsult.app.startup_objects_frozen", contextlib.nullcontext)
        yield


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A libpq URL of a server where the tests may create databases."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield _libpq(configured)
        return
    from chainconsult.infra.embedded.postgres import EmbeddedPostgres

    # Socket paths are limited to ~100 bytes: keep the data dir short.
    data_dir = Path(tempfile.mkdtemp(prefix="ccpg"))
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    yield url
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def _database_url(server_url: str, name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the server at libpq URL ``server_url``."""
    url = make_url(server_url.replace("postgresql://", "postgresql+psycopg://", 1))
    return url.set(database=name).render_as_string(hide_password=False)


class MigratedDatabases:
    """Makes databases at the newest schema as copies of one migrated template: a copy takes
    ~0.15 s where running the migrations takes 3-8 s. Whatever is left is dropped at the end
    of the session."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.template = f"cc_template_{uuid.uuid4().hex[:12]}"
        self.made: list[str] = []

    def create_template(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.template)))
        migrate(_database_url(self.server_url, self.template), echo=lambda _line: None)
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            # A copy fails while anyone is connected to its template: from now on, no one is.
            conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(
                    sql.Identifier(self.template)
                )
            )

    def create(self, prefix: str) -> str:
        """A new database at the newest schema, named ``prefix_<random>``; its SQLAlchemy URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(self.template)
                )
            )
            # A commit need not wait for its WAL to reach the disk (~10 ms each on a busy
            # host): nothing here survives a crash of the server anyway.
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(
                    sql.Identifier(name)
                )
            )
        self.made.append(name)
        return _database_url(self.server_url, name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        assert name is not None
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if name in self.made:
            self.made.remove(name)

    def drop_all(self) -> None:
        for name in [*self.made, self.template]:
            with psycopg.connect(self.server_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        self.made.clear()


@pytest.fixture(scope="session")
def migrated_databases(postgres_server_url: str) -> Iterator[MigratedDatabases]:
    """New databases at the newest schema, for tests that need one of their own."""
    databases = MigratedDatabases(postgres_server_url)
    databases.create_template()
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def database_url(migrated_databases: MigratedDatabases) -> str:
    """A fresh, migrated database for this test session (so parallel runs never collide)."""
    return migrated_databases.create("cc_test")


# The job queue's tables, outside the ORM metadata.
JOB_QUEUE_TABLES = (
    "procrastinate_jobs",
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_workers",
)


@pytest.fixture(scope="session")
def _emptying_statements(database_url: str) -> tuple[str, str]:
    """DELETE every app table (referencing tables before the ones they reference) and restart
    their sequences, as one statement; and the TRUNCATE that does the same in ~0.5 s a test
    (it gives each table and index a new file; a DELETE of a test's few rows takes about a
    millisecond), for when a table of the test's own references an app table."""
    tables = [table.name for table in Base.metadata.sorted_tables] + list(JOB_QUEUE_TABLES)
    with psycopg.connect(_libpq(database_url), autocommit=True) as conn:
        references = conn.execute(
            "SELECT child.relname, parent.relname FROM pg_constraint"
            " JOIN pg_class child ON child.oid = conrelid"
            " JOIN pg_class parent ON parent.oid = confrelid"
            " WHERE contype = 'f' AND child.relname = ANY(%(t)s) AND parent.relname = ANY(%(t)s)",
            {"t": tables},
        ).fetchall()
        sequences = conn.execute(
            "SELECT seqrelid::regclass::text, seqstart FROM pg_sequence"
            " JOIN pg_depend ON classid = 'pg_class'::regclass AND objid = seqrelid"
            " AND deptype IN ('a', 'i')"
            " JOIN pg_class owner ON owner.oid = refobjid WHERE owner.relname = ANY(%s)",
            (tables,),
        ).fetchall()
    # A table's rows go before the rows they reference.
    graph: dict[str, set[str]] = {table: set() for table in tables}
    for child, parent in references:
        if child != parent:
            graph[parent].add(child)
    order = TopologicalSorter(graph).static_order()
    statements = [f'DELETE FROM "{table}"' for table in order]
    if sequences:
        restarts = ", ".join(f"setval('{name}', {start}, false)" for name, start in sequences)
        statements.append(f"SELECT {restarts}")
    listed = ", ".join(f'"{table}"' for table in tables)
    return "; ".join(statements), f"TRUNCATE {listed} RESTART IDENTITY CASCADE"


@pytest.fixture(autouse=True)
def _no_escrow_difference_left() -> Iterator[None]:
    """The reconciliation gauge is process-wide and the built-in alert reads it: a test that
    found a difference must not make every later app of its worker page about it."""
    yield
    escrow_reconciliation_differences.set(0)


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the database, empty every app table."""
    if "database_url" not in request.fixturenames:
        yield
        return
    url = _libpq(request.getfixturevalue("database_url"))
    delete, truncate = request.getfixturevalue("_emptying_statements")
    yield
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            with conn.transaction():
                conn.execute(delete)
        except psycopg.errors.ForeignKeyViolation:
            # Rows of a table outside the app's point at the app's: CASCADE empties it too.
            conn.execute(truncate)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis URL: TEST_REDIS_URL, else a private redis-server, else the test skips."""
    configured = os.environ.get("TEST_REDIS_URL")
    if configured:
        yield configured
        return
    binary = shutil.which("redis-server")
    if binary is None:
        missing_service("no TEST_REDIS_URL and no redis-server binary on PATH")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(5)


def make_settings(database_url: str, tmp_path: Path, **env: Any) -> Settings:
    """Settings as a deployment would read them, from environment-style names."""
    values: dict[str, Any] = {
        "CHAINCONSULT_ENV": "test",
        "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "DATABASE_MAX_CONNECTIONS": 5,
        "REDIS_KEY_PREFIX": REDIS_PREFIX,
        # Scenario tests register and log in many accounts from one client address; the rate
        # limit tests set their own, tight limits.
        "RATE_LIMIT_AUTH": "100000/minute",
        "RATE_LIMIT_ANONYMOUS": "100000/minute",
        "RATE_LIMIT_FREE": "100000/minute",
        "RATE_LIMIT_PRO": "100000/minute",
        "RATE_LIMIT_ENTERPRISE": "100000/minute",
        # Scenario tests post projects right after registering; the verification tests
        # (tests/accounts/test_email_verification.py) set it to true, the default.
        "REQUIRE_VERIFIED_EMAIL": "false",
    }
    values.update(env)
    old = {key: os.environ.get(key) for key in values}
    os.environ.update({key: str(value) for key, value in values.items() if value is not None})
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
    try:
        return load_settings()
    finally:
        for key, previous in old.items():
            if previous is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = previous


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, REDIS_URL=None)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncClient]:
    async with serving(create_app(settings)) as http:
        yield http


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) of this test alone: what it receives, nothing else's."""
    server = SmtpSink().start()
    yield server
    # A conversation a test left held must not keep the server's thread from stopping.
    server.hold_rcpt.clear()
    server.stop()
