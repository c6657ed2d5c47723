"""The command line against a real PostgreSQL: migrate, create-admin, serve with workers."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from chainconsult.commands.serve import public_url_for
from tests.cli_runner import run_cli
from tests.helpers import PASSWORD
from tests.smtp import SmtpSink


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def empty_database(postgres_server_url: str) -> Iterator[str]:
    """A database with no schema at all, as an operator's new server would have."""
    name = f"cc_cli_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _as_url(postgres_server_url, name)
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _as_url(server_url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _cli(*args: str, env: dict[str, str], cwd: Path, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "chainconsult", *args],
        env={**os.environ, **env},
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def _wait_until_up(base: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("server did not come up")


def test_migrate_then_serve_with_two_workers(empty_database: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": empty_database, "SECRET_KEY": "k" * 40, "REDIS_URL": ""}
    output = _cli("migrate", env=env, cwd=tmp_path)
    assert "schema up to date" in output
    # In-process: the idempotent migrate and create-admin need no process of their own.
    again = run_cli("migrate", env=env, cwd=tmp_path)
    assert "schema up to date" in again.stdout + again.stderr
    created = run_cli(
        "create-admin", "ops@example.com", "--password-stdin", env=env, cwd=tmp_path, stdin=PASSWORD
    )
    assert created.returncode == 0, created.stderr

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "chainconsult", "serve", "--port", str(port), "--workers", "2"],
        env={**os.environ, **env},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_up(base, process)
        login = httpx.post(
            f"{base}/api/v2/auth/login", json={"email": "ops@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200
        token = login.json()["access_token"]
        me = httpx.get(f"{base}/api/v2/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["role"] == "admin"
        for _ in range(40):
            response = httpx.get(f"{base}/api/health")
            assert response.status_code == 200
        # Both workers answer: the supervisor started two children.
        import psutil

        pids = {child.pid for child in psutil.Process(process.pid).children()}
        assert len(pids) >= 2
    finally:
        process.terminate()
        assert process.wait(30) == 0


def test_create_admin_promotes_an_existing_account(empty_database: str, tmp_path: Path) -> None:
    # In-process: the test above runs these commands as the operator's processes.
    env = {"DATABASE_URL": empty_database, "SECRET_KEY": "k" * 40}
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    first = run_cli(
        "create-admin", "a@example.com", "--password-stdin", env=env, cwd=tmp_path, stdin=PASSWORD
    )
    again = run_cli(
        "create-admin", "A@example.com", "--password-stdin", env=env, cwd=tmp_path, stdin=PASSWORD
    )

    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert "created admin" in first.stdout + first.stderr
    assert "promoted admin" in again.stdout + again.stderr
    with psycopg.connect(empty_database) as conn:
        rows = conn.execute("SELECT role FROM accounts").fetchall()
    assert rows == [("admin",)]


@pytest.mark.slow
def test_embedded_server_keeps_accounts_across_restarts(tmp_path: Path) -> None:
    """The fresh-clone path: no DATABASE_URL, data under ./var, a restart keeps it."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update({"CHAINCONSULT_DATA_DIR": str(tmp_path / "var"), "REDIS_URL": ""})
    env.pop("DATABASE_URL", None)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "chainconsult", "serve", "--port", str(port)]

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_until_up(base, process, timeout=120)
        return process

    process = start()
    try:
        health = httpx.get(f"{base}/api/health")
        assert health.status_code == 200
        assert health.json()["status"] == "warn"  # no Redis configured
        second = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )
        assert second.returncode != 0
        assert "another chainconsult serve" in second.stderr
        created = httpx.post(
            f"{base}/api/v2/auth/register",
            json={"email": "keep@example.com", "password": PASSWORD, "display_name": "Keep"},
        )
        assert created.status_code == 201
    finally:
        process.terminate()
        assert process.wait(60) == 0

    process = start()
    try:
        login = httpx.post(
            f"{base}/api/v2/auth/login", json={"email": "keep@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200
    finally:
        process.terminate()
        assert process.wait(60) == 0
    # The embedded server stopped with the last process that used it.
    import psutil

    assert not [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]


def test_serve_imports_no_metrics_or_chain_library_before_its_workers_fork() -> None:
    """granian forks the workers from the `serve` process: had it imported prometheus_client
    before PROMETHEUS_MULTIPROC_DIR is set, every worker would count on its own
    (infra/monitoring/multiproc.py). web3 and eth_account, ~1 s of CPU, are for `devchain`
    alone: every other command starts without them."""
    code = (
        "import sys, chainconsult.cli, chainconsult.infra.db.migrate, granian.server; "
        "print(sorted({'prometheus_client', 'web3', 'eth_account'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:8123"),
        ("localhost", "http://localhost:8123"),
        ("::1", "http://[::1]:8123"),
        ("0.0.0.0", f"http://{socket.gethostname()}:8123"),
        ("::", f"http://{socket.gethostname()}:8123"),
    ],
)
def test_public_url_defaults_to_the_address_serve_listens_on(host: str, expected: str) -> None:
    assert public_url_for(host, 8123) == expected


@pytest.mark.parametrize("explicit", [None, "https://chainconsult.example"])
def test_the_in_process_worker_links_emails_to_where_serve_listens_unless_public_url_is_set(
    database_url: str, tmp_path: Path, explicit: str | None, sink: SmtpSink
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if key != "PUBLIC_URL"}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY="k" * 40,
        REDIS_URL="",
        EMAIL_SERVICE="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(sink.port),
        SMTP_TLS="none",
        CHAINCONSULT_DATA_DIR=str(tmp_path / "var"),
    )
    if explicit is not None:
        env["PUBLIC_URL"] = explicit
    command = ["serve", "--port", str(port), "--with-worker"]
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "chainconsult", *command],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        _wait_until_up(base, process)
        created = httpx.post(
            f"{base}/api/v2/auth/register",
            json={"email": "new@example.com", "password": PASSWORD, "display_name": "New"},
        )
        assert created.status_code == 201, created.text
        # The welcome and the address verification.
        [welcome] = [m for m in sink.wait_for(2) if m.message["Subject"].startswith("Welcome")]
    finally:
        process.terminate()
        assert process.wait(30) == 0

    links = re.findall(r"https?://\S+", welcome.part("plain"))
    public_url = explicit or base
    assert links
    assert all(link.startswith(f"{public_url}/") for link in links), links
    said = log.read_text()
    assert (f"emails link to {base} (PUBLIC_URL is unset)" in said) is (explicit is None)
