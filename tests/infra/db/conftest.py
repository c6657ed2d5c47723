"""Fixtures of the database resilience tests: an app with probe routes, synthetic tables
for racing writes, backend termination limited to this session's database, and a private
PostgreSQL server (with pg_stat_statements loaded) that tests may stop and start."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.engine import make_url

from chainconsult.app import create_app
from tests.conftest import _free_port, make_settings, missing_service
from tests.helpers import serving
from tests.infra.db.probe_routes import router as probe_router

AppClient = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, AsyncClient]]]


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def app_client(database_url: str, tmp_path: Path) -> AppClient:
    """``async with app_client(DATABASE_STATEMENT_TIMEOUT=200) as (app, client)``: the real
    app with the probe routes, on settings read from environment-style names."""

    @asynccontextmanager
    async def build(**env: Any) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
        env.setdefault("REDIS_URL", None)
        url = env.pop("DATABASE_URL", database_url)
        app = create_app(make_settings(url, tmp_path, **env))
        app.include_router(probe_router)
        async with serving(app, timeout=60) as client:
            yield app, client

    return build


SYNTHETIC = """
CREATE TABLE IF NOT EXISTS dbres_projects (
    id int PRIMARY KEY,
    status text NOT NULL DEFAULT 'open'
);
CREATE TABLE IF NOT EXISTS dbres_proposals (
    id int PRIMARY KEY,
    project_id int NOT NULL REFERENCES dbres_projects(id),
    status text NOT NULL DEFAULT 'pending'
);
CREATE UNIQUE INDEX IF NOT EXISTS dbres_one_accepted
    ON dbres_proposals (project_id) WHERE status = 'accepted';
CREATE TABLE IF NOT EXISTS dbres_usage (
    id serial PRIMARY KEY,
    account int NOT NULL,
    note text
);
CREATE TABLE IF NOT EXISTS dbres_counters (
    id int PRIMARY KEY,
    value int NOT NULL DEFAULT 0
);
"""


@pytest.fixture
def synthetic_tables(database_url: str) -> Iterator[str]:
    """Small tables of racing writes (not part of the app schema), emptied afterwards."""
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        conn.execute(SYNTHETIC)
    yield libpq(database_url)
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        # DELETE, not TRUNCATE: a few rows go in a millisecond, TRUNCATE's new files take ~0.1 s.
        conn.execute(
            "DELETE FROM dbres_proposals; DELETE FROM dbres_projects;"
            " DELETE FROM dbres_usage; DELETE FROM dbres_counters"
        )


def terminate_backends(database_url: str, application_name: str = "chainconsult") -> int:
    """pg_terminate_backend on this test database's app connections only (never another
    session's database); returns how many were terminated."""
    name = make_url(database_url).database
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s AND pid <> pg_backend_pid()",
            (name, application_name),
        ).fetchall()
    return sum(1 for (done,) in rows if done)


class PrivatePostgres:
    """A throw-away PostgreSQL 15 server on a free port, run as the postgres user when the
    tests run as root (initdb refuses root). Tests stop and start it to inject outages."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        command = list(argv)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c shared_preload_libraries=pg_stat_statements -c fsync=off -c max_connections=40"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=1).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        missing_service("no initdb/pg_ctl on PATH for a private PostgreSQL server")
    root = Path(tempfile.mkdtemp(prefix="ccpriv"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    server = PrivatePostgres(root)
    server.init()
    server.start()
    server.wait_ready()
    yield server
    with contextlib.suppress(subprocess.CalledProcessError):  # a test may have stopped it
        server.stop("immediate")
    shutil.rmtree(root, ignore_errors=True)
