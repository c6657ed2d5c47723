"""The platform as it runs in production, on private services: `chainconsult serve --workers N`
and `chainconsult worker` processes (kept alive the way systemd's Restart=always would) on a
private PostgreSQL holding the demo data, a private Redis and a private SMTP sink."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
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
from psycopg.rows import dict_row

APP_DATABASE = "chainconsult"
UNLIMITED = "1000000/minute"


@dataclass
class StackOptions:
    server_workers: int = 2
    job_workers: int = 2
    job_concurrency: int = 8
    smtp_rcpt_delay: float = 0.0
    with_redis: bool = True
    env: dict[str, str] = field(default_factory=dict)


def base_env(
    *, database_url: str, redis_url: str | None, smtp: SmtpSink, data_dir: Path
) -> dict[str, str]:
    """What an operator would set (see docs/scale-out.md), with job timings shortened so a
    dead worker is noticed within seconds instead of half a minute."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CHAINCONSULT_", "DATABASE_", "REDIS_", "RATE_LIMIT_", "JOB_"))
    }
    env.update(
        {
            "CHAINCONSULT_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "CHAINCONSULT_DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url,
            "DATABASE_MAX_CONNECTIONS": "10",
            "LOG_LEVEL": "WARNING",
            "EMAIL_SERVICE": "smtp",
            "SMTP_HOST": smtp.host,
            "SMTP_PORT": str(smtp.port),
            "SMTP_TLS": "none",
            "SMTP_FROM": "chainconsult <noreply@chainconsult.example>",
            "PUBLIC_URL": "https://chainconsult.example",
            # The load comes from one address: limits are counted (in Redis when it is
            # there) but never reached.
            "RATE_LIMIT_ANONYMOUS": UNLIMITED,
            "RATE_LIMIT_FREE": UNLIMITED,
            "RATE_LIMIT_PRO": UNLIMITED,
            "RATE_LIMIT_ENTERPRISE": UNLIMITED,
            "RATE_LIMIT_AUTH": UNLIMITED,
            # The load posts projects from accounts it has just registered.
            "REQUIRE_VERIFIED_EMAIL": "false",
            "HEALTH_CACHE_SECONDS": "0.2",
            "JOB_POLL_INTERVAL_SECONDS": "0.5",
            "JOB_HEARTBEAT_SECONDS": "1",
            "JOB_STALLED_AFTER_SECONDS": "3",
            "JOB_RECOVERY_INTERVAL_SECONDS": "1",
            "JOB_SHUTDOWN_GRACE_SECONDS": "10",
        }
    )
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
        env["REDIS_KEY_PREFIX"] = f"ccchaos-{secrets.token_hex(4)}"
    return env


def run_cli(
    env: dict[str, str],
    *args: str,
    log: Path,
    timeout: float = 300,
    python: str = sys.executable,
    cwd: Path | None = None,
) -> None:
    """`chainconsult ARGS` run by ``python`` (another tree's interpreter for a baseline)."""
    with log.open("ab") as out:
        result = subprocess.run(
            [python, "-m", "chainconsult", *args],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        raise ServiceError(f"chainconsult {' '.join(args)} failed; see {log}")


class ApiServer:
    """`chainconsult serve --workers N` in a process group of its own."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int,
        log: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        self.env = env
        self.workers = workers
        self.log = log
        self.host = host
        self.port = port or free_port(host)
        self.prefix = list(prefix)
        self.base_url = f"http://{host}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> ApiServer:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    *self.prefix,
                    sys.executable,
                    "-m",
                    "chainconsult",
                    "serve",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ServiceError(f"the API server exited; see {self.log}")
            try:
                ready = httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready and len(self.worker_pids()) >= self.workers:
                return
            time.sleep(0.2)
        raise ServiceError(f"the API server was not ready within {timeout:.0f} s; see {self.log}")

    def worker_pids(self) -> list[int]:
        """The processes that serve requests (bench/_workers.py)."""
        if self.process is None:
            return []
        return server_worker_pids(self.process.pid)

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)
            self.process = None


class SupervisedWorker:
    """A `chainconsult worker` process restarted one second after it exits, for whatever
    reason, as systemd's Restart=always with RestartSec=1 does (deploy/systemd)."""

    RESTART_DELAY = 1.0

    def __init__(
        self,
        env: dict[str, str],
        *,
        name: str,
        concurrency: int,
        log: Path,
        prefix: Sequence[str] = (),
    ) -> None:
        self.env = env
        self.name = name
        self.concurrency = concurrency
        self.log = log
        self.prefix = list(prefix)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts: list[float] = []
        self.exits: list[tuple[float, int]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name=name, daemon=True)
        self._lock = threading.Lock()

    def start(self) -> SupervisedWorker:
        self._spawn()
        self._thread.start()
        return self

    def _spawn(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    *self.prefix,
                    sys.executable,
                    "-m",
                    "chainconsult",
                    "worker",
                    "--concurrency",
                    str(self.concurrency),
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts.append(time.monotonic())

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                process = self.process
                code = process.poll() if process is not None else None
                if process is not None and code is not None:
                    self.exits.append((time.monotonic(), code))
                    self.process = None
            if process is not None and code is not None:
                if self._stopping.wait(self.RESTART_DELAY):
                    return
                with self._lock:
                    if not self._stopping.is_set():
                        self._spawn()
            self._stopping.wait(0.05)

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self.process.pid if self.process is not None else None

    @property
    def restarts(self) -> int:
        return len(self.starts) - 1

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(10)
        with self._lock:
            if self.process is not None:
                stop_process_group(self.process)
                self.process = None


class Stack:
    """Private PostgreSQL (migrated, with the demo data), Redis and SMTP sink; one API server
    and the job workers. A context manager: everything stops and is removed on exit."""

    def __init__(self, options: StackOptions, *, keep_logs: Path | None = None) -> None:
        self.options = options
        self.workdir = Path(tempfile.mkdtemp(prefix="ccchaos-"))
        self.keep_logs = keep_logs
        self.postgres = PrivatePostgres()
        self.redis = PrivateRedis() if options.with_redis else None
        self.smtp = SmtpSink(rcpt_delay=options.smtp_rcpt_delay)
        self.server: ApiServer | None = None
        self.workers: list[SupervisedWorker] = []
        self.env: dict[str, str] = {}
        self.database_url = ""

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        self.postgres.start()
        if self.redis is not None:
            self.redis.start()
        self.smtp.start()
        self.database_url = self.postgres.create_database(APP_DATABASE)
        self.env = base_env(
            database_url=self.database_url,
            redis_url=self.redis.url if self.redis is not None else None,
            smtp=self.smtp,
            data_dir=self.workdir / "var",
        )
        self.env.update(self.options.env)
        setup_log = self.workdir / "setup.log"
        run_cli(self.env, "migrate", log=setup_log)
        run_cli(self.env, "demo-data", log=setup_log)
        self.server = ApiServer(
            self.env, workers=self.options.server_workers, log=self.workdir / "server.log"
        ).start()
        for index in range(self.options.job_workers):
            self.workers.append(
                SupervisedWorker(
                    self.env,
                    name=f"worker-{index + 1}",
                    concurrency=self.options.job_concurrency,
                    log=self.workdir / f"worker-{index + 1}.log",
                ).start()
            )

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            worker.stop()
        if self.server is not None:
            self.server.stop()
        self.smtp.stop()
        if self.redis is not None:
            self.redis.stop()
        self.postgres.stop()
        if self.keep_logs is not None:
            self.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in self.workdir.glob("*.log"):
                shutil.copy(log, self.keep_logs / log.name)
        shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row) as conn:
            return conn.execute(sql, params).fetchall()
