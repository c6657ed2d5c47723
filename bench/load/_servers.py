"""What the load runs talk to: PostgreSQL and Redis (private ones started for the run, or the
servers named by BENCH_DATABASE_URL / BENCH_REDIS_URL), and the three HTTP servers compared,
each in a process group of its own with its CPU time and memory read over the process tree:

- chainconsult: `chainconsult serve --workers N`, configured as in production;
- the peer: bench/peer/app.py, a typical FastAPI stack, on uvicorn with the same worker count;
- bare: one FastAPI route returning fixed bytes (bench/load/bare.py), on granian with the
  options of `chainconsult serve`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import psycopg
from bench._workers import server_worker_pids
from bench.chaos._services import (
    PrivatePostgres,
    PrivateRedis,
    ServiceError,
    SmtpSink,
    free_port,
    stop_process_group,
)
from bench.chaos._stack import APP_DATABASE, UNLIMITED, base_env, run_cli
from bench.load._wrk import pinned
from psycopg import sql
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parents[2]
PEER_APP = REPO_ROOT / "bench" / "peer" / "app.py"

# The chaos runs' job timings and health cache are theirs; a benchmark runs the defaults.
_CHAOS_ONLY = ("JOB_", "HEALTH_CACHE_SECONDS", "DATABASE_MAX_CONNECTIONS", "SMTP_")


@dataclass
class Services:
    database_url: str
    redis_url: str | None
    peer_redis_url: str | None
    postgres_version: str
    redis_version: str
    demo_loaded: bool = False
    """The database is a copy of BENCH_DEMO_TEMPLATE: migrated, demo data in."""


@contextlib.contextmanager
def services() -> Iterator[Services]:
    """PostgreSQL holding a migrated database with the demo data, and Redis. With
    BENCH_DATABASE_URL a fresh database is created on that server (and dropped at the end);
    with BENCH_REDIS_URL the run's keys carry a prefix of their own. With BENCH_DEMO_TEMPLATE
    too (a database on that server holding the migrated demo data, as the test suite keeps one)
    the fresh database is a copy of it."""
    given_db = os.environ.get("BENCH_DATABASE_URL")
    template = os.environ.get("BENCH_DEMO_TEMPLATE") if given_db else None
    given_redis = os.environ.get("BENCH_REDIS_URL")
    postgres: PrivatePostgres | None = None
    redis: PrivateRedis | None = None
    created: tuple[str, str] | None = None
    try:
        if given_db:
            name = f"cc_load_{secrets.token_hex(4)}"
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            with psycopg.connect(given_db, autocommit=True) as conn:
                conn.execute(statement)
            created = (given_db, name)
            database_url = make_url(given_db).set(database=name).render_as_string(False)
        else:
            postgres = PrivatePostgres().start()
            database_url = postgres.create_database(APP_DATABASE)
        if given_redis:
            redis_url: str | None = given_redis
            peer_redis_url = given_redis
        else:
            redis = PrivateRedis().start()
            redis_url = redis.url
            # Its own logical database: the peer's keys never meet ours.
            peer_redis_url = redis.url.rsplit("/", 1)[0] + "/1"
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        yield Services(
            database_url=database_url,
            redis_url=redis_url,
            peer_redis_url=peer_redis_url,
            postgres_version=str(row[0]) if row else "?",
            redis_version=_redis_version(redis_url),
            demo_loaded=bool(template),
        )
    finally:
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()
        if created is not None:
            with psycopg.connect(created[0], autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(created[1])
                    )
                )


def _redis_version(url: str | None) -> str:
    if url is None:
        return "none"
    import redis

    client = redis.Redis.from_url(url)
    try:
        return str(client.info("server").get("redis_version", "?"))
    finally:
        client.close()


def server_env(svc: Services, data_dir: Path) -> dict[str, str]:
    """What an operator sets (the chaos runs' environment: production mode, rate limits
    counted but raised out of reach because all the load comes from one address), minus the
    chaos runs' shortened job timings. LOG_LEVEL is WARNING; TRUSTED_IPS is not set, so
    every request goes through the whole edge stack as in production."""
    env = base_env(
        database_url=svc.database_url,
        redis_url=svc.redis_url,
        smtp=SmtpSink(port=1),
        data_dir=data_dir,
    )
    env = {key: value for key, value in env.items() if not key.startswith(_CHAOS_ONLY)}
    env.pop("TRUSTED_IPS", None)
    env["EMAIL_SERVICE"] = "disabled"
    env["REDIS_KEY_PREFIX"] = f"ccload-{secrets.token_hex(4)}"
    return env


def prepare_database(env: dict[str, str], log: Path) -> None:
    run_cli(env, "migrate", log=log)
    run_cli(env, "demo-data", log=log)


class Server:
    """One HTTP server under test, started in a process group of its own."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        env: dict[str, str],
        workers: int,
        port: int,
        log: Path,
        ready_path: str,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.env = env
        self.workers = workers
        self.port = port
        self.log = log
        self.ready_path = ready_path
        self.cwd = cwd
        self.base_url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.cpus: frozenset[int] | None = None
        """The CPUs the server's processes may run on (--pin); None: any."""

    def start(self, timeout: float = 90) -> Server:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                # taskset execs the server in its own process: the pid stays the server's.
                [*pinned(self.cpus), *self.command],
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(f"{self.name} exited at start; see {self.log}")
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.get(self.base_url + self.ready_path, timeout=2)
                if response.status_code == 200 and len(self.worker_pids()) >= self.workers:
                    return self
            time.sleep(0.2)
        self.stop()
        raise ServiceError(f"{self.name} was not ready within {timeout:.0f} s; see {self.log}")

    def worker_pids(self) -> list[int]:
        """The processes that serve requests (bench/_workers.py)."""
        if self.process is None:
            return []
        return server_worker_pids(self.process.pid)

    def tree(self) -> list[psutil.Process]:
        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def cpu_seconds(self) -> float:
        """User + system CPU time of the whole process tree so far."""
        total = 0.0
        for process in self.tree():
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def wait_idle(self, *, below_percent: float = 10, timeout: float = 60) -> float:
        """Wait until the server's CPU use over half a second falls below ``below_percent``
        of a core: work left over from the previous point (requests wrk gave up on, whose
        handlers still run) must not bill the next one. Returns the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            before = self.cpu_seconds()
            time.sleep(0.5)
            if (self.cpu_seconds() - before) / 0.5 * 100 < below_percent:
                break
        return time.monotonic() - started

    def worker_rss_mb(self) -> list[float]:
        sizes = []
        for pid in self.worker_pids():
            with contextlib.suppress(psutil.Error):
                sizes.append(psutil.Process(pid).memory_info().rss / 1_048_576)
        return sizes

    def stop(self) -> None:
        # A short grace: what is still in flight (logins wrk gave up on) is not measured.
        if self.process is not None:
            stop_process_group(self.process, grace=5)
            self.process = None

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def chainconsult_server(
    env: dict[str, str],
    *,
    workers: int,
    log: Path,
    python: str = sys.executable,
    cwd: Path = REPO_ROOT,
) -> Server:
    """`chainconsult serve` run by ``python`` (another tree's interpreter for --baseline)."""
    port = free_port()
    command = [python, "-m", "chainconsult", "serve", "--port", str(port)]
    return Server(
        "chainconsult",
        [*command, "--workers", str(workers)],
        env=env,
        workers=workers,
        port=port,
        log=log,
        ready_path="/readyz",
        cwd=cwd,
    )


def peer_present() -> bool:
    return PEER_APP.is_file()


def peer_server(env: dict[str, str], svc: Services, *, workers: int, log: Path) -> Server:
    """The peer on uvicorn, as its module documents (bench/peer/app.py)."""
    port = free_port()
    peer_env = {
        key: value
        for key, value in env.items()
        if not key.startswith(("DATABASE_", "REDIS_", "CHAINCONSULT_", "RATE_LIMIT_", "PEER_"))
    }
    peer_env.update(
        PEER_DATABASE_URL=svc.database_url,
        PEER_KEY_PREFIX=f"peer-{secrets.token_hex(4)}",
        # The same out-of-reach limits as chainconsult's: counted, never reached.
        PEER_RATE_LIMIT=UNLIMITED,
        PEER_LOGIN_RATE_LIMIT=UNLIMITED,
    )
    if svc.peer_redis_url is not None:
        peer_env["PEER_REDIS_URL"] = svc.peer_redis_url
    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    command = [uvicorn, "bench.peer.app:app", "--host", "127.0.0.1", "--port", str(port)]
    return Server(
        "peer",
        [*command, "--workers", str(workers), "--no-access-log"],
        env=peer_env,
        workers=workers,
        port=port,
        log=log,
        ready_path="/api/v2/experts",
    )


def bare_server(env: dict[str, str], body: bytes, *, workdir: Path, log: Path) -> Server:
    body_file = workdir / "bare-body.json"
    body_file.write_bytes(body)
    port = free_port()
    command = [sys.executable, "-m", "bench.load.bare", "--port", str(port)]
    return Server(
        "bare",
        [*command, "--body-file", str(body_file)],
        env=env,
        workers=1,
        port=port,
        log=log,
        ready_path="/api/v2/experts",
    )


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="ccload-"))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class Sample:
    seconds: float
    rss_mb: list[float]


class RssSampler:
    """Each worker's RSS every ``every_seconds``, on a thread of its own."""

    def __init__(self, server: Server, *, every_seconds: float) -> None:
        self.server = server
        self.every = every_seconds
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._started = 0.0

    def start(self) -> RssSampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while True:
            self.samples.append(
                Sample(time.monotonic() - self._started, self.server.worker_rss_mb())
            )
            if self._stop.wait(self.every):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.samples.append(Sample(time.monotonic() - self._started, self.server.worker_rss_mb()))
