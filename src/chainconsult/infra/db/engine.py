"""The async engine, built from settings when the application starts (never at import)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from chainconsult.infra.db.liveness import install_liveness_check
from chainconsult.infra.db.pool import InstrumentedPool
from chainconsult.infra.db.statement_timing import install_statement_timing
from chainconsult.infra.db.writes import TrackedSession
from chainconsult.infra.settings.database import DatabaseSettings
from chainconsult.infra.tracing import instrument_engine


def build_engine(
    settings: DatabaseSettings, *, application_name: str = "chainconsult"
) -> AsyncEngine:
    timeout_s = settings.connection_timeout_ms / 1000
    # Every statement of every session is capped server-side, so a runaway query cannot hold
    # a pooled connection; a request may lower or raise it with `statement_timeout()`.
    options = f"-c statement_timeout={settings.statement_timeout_ms}"
    engine = create_async_engine(
        settings.sqlalchemy_url(),
        poolclass=InstrumentedPool,
        pool_size=settings.max_connections,
        max_overflow=settings.max_overflow,
        pool_timeout=timeout_s,
        pool_recycle=settings.pool_recycle_seconds,
        # A connection the server dropped (restart, failover, pg_terminate_backend) is
        # noticed at checkout and replaced, instead of failing the request that drew it: by
        # a look at its socket rather than a ping (liveness.py).
        pool_pre_ping=False,
        connect_args={
            # libpq takes whole seconds; anything below one would mean "wait forever".
            "connect_timeout": max(1, round(timeout_s)),
            "application_name": application_name,
            "options": options,
        },
    )
    install_liveness_check(engine)
    install_statement_timing(engine, slow_query_ms=settings.slow_query_ms)
    instrument_engine(engine)
    return engine


def build_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Objects stay readable after commit: responses are built from them after the
    # transaction ends, and nothing lazy-loads outside it.
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=True, sync_session_class=TrackedSession
    )
