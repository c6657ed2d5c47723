"""The PostgreSQL and Redis pings, run on one dedicated thread with blocking clients.

An async ping needs several turns of the event loop (check out, send, receive); when the loop
is saturated by requests each turn can take a hundred milliseconds, and a healthy database
would look "down" exactly when the node is busiest, so a load balancer would drop busy nodes
one after another. On its own thread the ping takes the database's time, and the loop only has
to notice one finished future. One thread, because probes are single-flight anyway and must not
queue behind password hashing on the shared default executor."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
import redis

PING_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class PingResult:
    ok: bool | None
    """None: not configured."""
    ms: float = 0.0
    error: str | None = None


class DependencyPings:
    def __init__(self, *, postgres_url: str, redis_url: str | None) -> None:
        self.postgres_url = postgres_url
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health-ping")
        self._postgres: psycopg.Connection[tuple[object, ...]] | None = None
        self._redis: redis.Redis | None = None
        if redis_url is not None:
            self._redis = redis.Redis.from_url(
                redis_url,
                socket_timeout=PING_TIMEOUT_S,
                socket_connect_timeout=PING_TIMEOUT_S,
            )

    @property
    def redis_configured(self) -> bool:
        return self._redis is not None

    async def ping(self) -> tuple[PingResult, PingResult]:
        """(postgres, redis); never raises, never takes much longer than the timeouts."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._ping_both)
        try:
            # Each client has its own timeouts; this bound only guards against the unforeseen.
            return await asyncio.wait_for(future, 3 * PING_TIMEOUT_S + 0.5)
        except TimeoutError:
            return PingResult(False, error="timeout"), PingResult(
                None if self._redis is None else False, error="timeout"
            )

    def _ping_both(self) -> tuple[PingResult, PingResult]:
        return self._ping_postgres(), self._ping_redis()

    def _ping_postgres(self) -> PingResult:
        started = time.perf_counter()
        try:
            connection = self._postgres
            if connection is None or connection.closed or connection.broken:
                connection = self._postgres = psycopg.connect(
                    self.postgres_url,
                    autocommit=True,
                    # libpq takes whole seconds here.
                    connect_timeout=max(1, math.ceil(PING_TIMEOUT_S)),
                    application_name="chainconsult-health",
                    options=f"-c statement_timeout={int(PING_TIMEOUT_S * 1000)}",
                    # A server that stops answering mid-query (frozen, network gone) would
                    # otherwise hold the ping thread until TCP gives up, minutes later.
                    tcp_user_timeout=int(PING_TIMEOUT_S * 2000),
                )
            connection.execute("SELECT 1")
        except (psycopg.Error, OSError) as exc:
            self._close_postgres()
            return PingResult(False, error=type(exc).__name__)
        return PingResult(True, (time.perf_counter() - started) * 1000)

    def _ping_redis(self) -> PingResult:
        if self._redis is None:
            return PingResult(None)
        started = time.perf_counter()
        try:
            self._redis.ping()
        except (redis.RedisError, OSError) as exc:
            return PingResult(False, error=type(exc).__name__)
        return PingResult(True, (time.perf_counter() - started) * 1000)

    def _close_postgres(self) -> None:
        if self._postgres is not None:
            with contextlib.suppress(Exception):
                self._postgres.close()
            self._postgres = None

    def _close_all(self) -> None:
        self._close_postgres()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                self._redis.close()

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(loop.run_in_executor(self._executor, self._close_all), 2.0)
        self._executor.shutdown(wait=False)
