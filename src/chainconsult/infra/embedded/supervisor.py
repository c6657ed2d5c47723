"""Keeps the embedded PostgreSQL running for as long as `serve` runs.

A thread of the `serve` process (the one that started the server) looks at the postmaster twice
a second. When it is gone (killed, crashed, OOM-killed) the thread starts it again at once and,
while that fails (its old processes still exiting, a full disk, a broken configuration), again
after 0.5, 1, 2, 4, 8 and then every 10 seconds, for as long as `serve` runs. PostgreSQL's crash
recovery replays its write-ahead log on the restart, so every committed transaction is kept.
Meanwhile requests get 503 database-unavailable problems; afterwards the server workers' pools
replace their dead connections by themselves (infra/db/liveness.py), without a restart of
`serve`. The state file (state.py) lets the workers' /livez fail once the outage outlasts
EMBEDDED_POSTGRES_MAX_DOWN_SECONDS."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from chainconsult.infra.embedded.postgres import EmbeddedDatabaseError, EmbeddedPostgres
from chainconsult.infra.embedded.state import SupervisorState, write_state

log = structlog.get_logger("chainconsult.embedded")

POLL_S = 0.5
FIRST_RETRY_S = 0.5
MAX_RETRY_S = 10.0
STABLE_S = 30.0
"""A server that dies again this soon after a restart continues the outage that restart ended:
a crash loop must not look like a string of short outages to /livez."""
STOP_TIMEOUT_S = 30.0


class PostgresSupervisor:
    def __init__(
        self,
        server: EmbeddedPostgres,
        state_path: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.server = server
        self.state_path = state_path
        self._clock = clock
        self._down_since: float | None = None
        self._previous_outage: float | None = None
        self._up_since: float | None = None
        self._failed_attempts = 0
        self._restarts = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._publish()
        self._thread = threading.Thread(
            target=self._run, name="embedded-postgres-supervisor", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Before the server is stopped on purpose: it must not be started again."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None

    def _run(self) -> None:
        delay = POLL_S
        while not self._stopping.wait(delay):
            try:
                delay = self.tick()
            except Exception:
                # Never let the watch end: the next look may well succeed.
                log.exception("embedded_postgres_supervisor_error")
                delay = MAX_RETRY_S

    def tick(self) -> float:
        """One look at the server (and one restart when it is down); returns the seconds to
        wait before the next look."""
        now = self._clock()
        if self._down_since is None:
            if self.server.running():
                return POLL_S
            self._went_down(now)
        try:
            self.server.ensure_running()
        except EmbeddedDatabaseError as error:
            self._failed_attempts += 1
            delay = min(MAX_RETRY_S, FIRST_RETRY_S * 2.0 ** (self._failed_attempts - 1))
            log.warning(
                "embedded_postgres_restart_failed",
                attempt=self._failed_attempts,
                retry_in_s=delay,
                error=str(error),
            )
            return delay
        self._restarts += 1
        log.warning(
            "embedded_postgres_restarted",
            pid=self.server.pid,
            down_s=round(now - (self._down_since or now), 1),
            failed_attempts=self._failed_attempts,
        )
        self._previous_outage, self._down_since = self._down_since, None
        self._up_since = now
        self._publish()
        return POLL_S

    def _went_down(self, now: float) -> None:
        relapse = self._up_since is not None and now - self._up_since < STABLE_S
        if relapse and self._previous_outage is not None:
            self._down_since = self._previous_outage
        else:
            self._down_since, self._failed_attempts = now, 0
        log.error("embedded_postgres_down", pgdata=str(self.server.pgdata), relapse=relapse)
        self._publish()

    def _publish(self) -> None:
        write_state(
            self.state_path,
            SupervisorState(down_since=self._down_since, restarts=self._restarts),
        )


@contextmanager
def supervised_embedded_database(data_dir: Path, state_path: Path) -> Iterator[str]:
    """The embedded server started (or attached to) and kept running while the block runs;
    stopped (by the last process attached) after it."""
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    supervisor = PostgresSupervisor(server, state_path)
    try:
        supervisor.start()
        yield url
    finally:
        supervisor.stop()
        server.stop()
