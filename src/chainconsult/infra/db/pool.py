"""The connection pool, instrumented: how many connections are checked out, idle and in
overflow, how long callers wait for one, and whether the pool has been exhausted for long
enough that this process should stop receiving traffic.

SQLAlchemy's pool events fire only once a connection is handed over (``checkout``) or given
back (``checkin``); nothing fires when a caller *starts* waiting. Wait time and exhaustion
therefore need a thin subclass of the asyncio queue pool that wraps ``connect`` and
``_return_conn``; everything else (sizing, timeouts, recycle) is SQLAlchemy's own, and
liveness.py checks a connection at checkout.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, Pool, PoolProxiedConnection

from chainconsult.infra.monitoring.metrics import db_pool_connections, db_pool_wait_seconds


@dataclass(frozen=True, slots=True)
class PoolStatus:
    """A snapshot of one process's pool, for readiness, detailed health and metrics."""

    size: int
    """Connections the pool keeps open (DATABASE_MAX_CONNECTIONS)."""
    max_overflow: int
    """Extra connections allowed above ``size`` under bursts (DATABASE_MAX_OVERFLOW)."""
    checked_out: int
    """Connections lent to requests or jobs right now."""
    idle: int
    """Open connections waiting in the pool."""
    overflow: int
    """Connections open above ``size``."""
    waiting: int
    """Callers waiting because every connection is lent out."""
    timeouts: int
    """Callers that gave up waiting (DATABASE_CONNECTION_TIMEOUT) since the pool was built."""
    timeout_seconds: float
    """How long a caller waits for a connection before giving up."""
    exhausted_seconds: float
    """How long the pool has had no free connection for a caller (0 when it has one)."""

    @property
    def capacity(self) -> int:
        return self.size + self.max_overflow

    @property
    def exhausted(self) -> bool:
        """No free connection for longer than a caller may wait: requests are timing out, so
        readiness fails and the load balancer sends traffic elsewhere until it drains."""
        return self.exhausted_seconds > 0 and self.exhausted_seconds >= self.timeout_seconds

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "capacity": self.capacity, "exhausted": self.exhausted}


class InstrumentedPool(AsyncAdaptedQueuePool):
    """``AsyncAdaptedQueuePool`` that keeps the numbers behind :class:`PoolStatus` and the
    ``db_pool_connections`` and ``db_pool_wait_seconds`` metrics.

    The constructor is SQLAlchemy's (``recreate()`` and ``dispose()`` call it with the same
    arguments), so the counters are plain attributes set on top of it. The pool runs on one
    event loop thread, so the counters need no lock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting = 0
        self.timeouts = 0
        self.saturated_since: float | None = None
        self.report_metrics = True

    def connect(self) -> PoolProxiedConnection:
        must_wait = self.checkedout() >= self.size() + max(self._max_overflow, 0)
        if must_wait:
            self.waiting += 1
            if self.saturated_since is None:
                self.saturated_since = time.monotonic()
        started = time.perf_counter()
        try:
            connection = super().connect()
        except sa_exc.TimeoutError:
            self.timeouts += 1
            raise
        finally:
            if must_wait:
                self.waiting -= 1
            db_pool_wait_seconds.observe(time.perf_counter() - started)
        self._publish()
        return connection

    def _return_conn(self, record: ConnectionPoolEntry) -> None:
        super()._return_conn(record)
        if self.waiting == 0:
            # The returned connection stays in the pool unclaimed: there is room again.
            self.saturated_since = None
        self._publish()

    def _publish(self) -> None:
        if not self.report_metrics:
            return
        db_pool_connections.labels(state="checked_out").set(self.checkedout())
        db_pool_connections.labels(state="idle").set(self.checkedin())
        db_pool_connections.labels(state="overflow").set(max(self.overflow(), 0))


def pool_status(engine: AsyncEngine) -> PoolStatus:
    """The engine's pool right now. Cheap (no I/O): fine to call from every health probe."""
    pool: Pool = engine.sync_engine.pool
    if not isinstance(pool, InstrumentedPool):
        raise TypeError("the engine was not built by chainconsult.infra.db.engine.build_engine")
    since = pool.saturated_since
    return PoolStatus(
        size=pool.size(),
        max_overflow=max(pool._max_overflow, 0),
        checked_out=pool.checkedout(),
        idle=pool.checkedin(),
        overflow=max(pool.overflow(), 0),
        waiting=pool.waiting,
        timeouts=pool.timeouts,
        timeout_seconds=pool.timeout(),
        exhausted_seconds=0.0 if since is None else round(time.monotonic() - since, 3),
    )
