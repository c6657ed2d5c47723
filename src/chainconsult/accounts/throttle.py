"""Brute-force defence for login: failures are counted per account and per client IP; past a
few, each further attempt must wait a delay that doubles; past the lockout count the key is
refused until its window ends (ASVS 2.2.1: at most 100 failed attempts per hour per account)
or an admin unlocks it. A success clears the account's count.

Accounts are keyed by a hash of the address typed, not by the account row, so an address
without an account is delayed and locked exactly like one with: the answers never tell them
apart. Refused attempts do not check the password at all, so they also cost no argon2 time.

The repository sits in this module rather than accounts/repository.py because its rows live
outside the request's transaction (see ``record_failure``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.config import LoginThrottleSettings
from chainconsult.errors import TooManyRequests
from chainconsult.infra.monitoring.metrics import auth_failures_total
from chainconsult.models.base import utcnow
from chainconsult.models.login_throttle import LoginFailureCounter


def account_key(email: str) -> str:
    """The counter key of an address (already normalised: accounts.schemas.normalize_email)."""
    return "email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def ip_key(ip: str) -> str:
    # Hashed like the address: the table holds no raw personal value to erase or leak.
    return "ip:" + hashlib.sha256(ip.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    free_failures: int
    lockout_failures: int
    max_delay_seconds: int
    window_seconds: int

    def wait(self, counter: LoginFailureCounter, now: dt.datetime) -> float:
        """Seconds before this key may try again (0: now)."""
        window_end = counter.window_started_at + dt.timedelta(seconds=self.window_seconds)
        if window_end <= now:
            return 0.0
        if counter.failures >= self.lockout_failures:
            return (window_end - now).total_seconds()
        if counter.failures < self.free_failures:
            return 0.0
        delay = min(self.max_delay_seconds, 2 ** (counter.failures - self.free_failures))
        allowed_at = counter.last_failure_at + dt.timedelta(seconds=delay)
        return max(0.0, (allowed_at - now).total_seconds())


class LoginFailureRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def counters(self, keys: list[str]) -> list[LoginFailureCounter]:
        query = select(LoginFailureCounter).where(LoginFailureCounter.key.in_(keys))
        return list((await self.session.execute(query)).scalars())

    async def add_failure(self, key: str, now: dt.datetime, window_seconds: int) -> None:
        """One atomic upsert, so concurrent failures are all counted; a stale window restarts."""
        table = LoginFailureCounter.__table__
        stale = table.c.window_started_at <= now - dt.timedelta(seconds=window_seconds)
        statement = insert(LoginFailureCounter).values(
            key=key, failures=1, window_started_at=now, last_failure_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "failures": case((stale, 1), else_=table.c.failures + 1),
                "window_started_at": case((stale, now), else_=table.c.window_started_at),
                "last_failure_at": now,
            },
        )
        await self.session.execute(statement)

    async def clear(self, keys: list[str]) -> int:
        result = await self.session.execute(
            delete(LoginFailureCounter).where(LoginFailureCounter.key.in_(keys))
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def purge_older_than(self, cutoff: dt.datetime) -> int:
        result = await self.session.execute(
            delete(LoginFailureCounter).where(LoginFailureCounter.window_started_at < cutoff)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


class LoginThrottle:
    def __init__(self, settings: LoginThrottleSettings) -> None:
        self.window_seconds = settings.window_seconds
        self.account_rule = ThrottleRule(
            settings.free_failures,
            settings.lockout_failures,
            settings.max_delay_seconds,
            settings.window_seconds,
        )
        self.ip_rule = ThrottleRule(
            settings.ip_free_failures,
            settings.ip_lockout_failures,
            settings.max_delay_seconds,
            settings.window_seconds,
        )

    async def ensure_allowed(self, session: AsyncSession, *, email: str, ip: str | None) -> None:
        """Raise 429 with Retry-After while the account or the IP must wait."""
        keys = {account_key(email): self.account_rule}
        if ip:
            keys[ip_key(ip)] = self.ip_rule
        now = utcnow()
        counters = await LoginFailureRepository(session).counters(list(keys))
        wait = max((keys[c.key].wait(c, now) for c in counters), default=0.0)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            # One wording for a delay and a lockout, for known and unknown addresses alike.
            raise TooManyRequests(
                f"Too many failed logins; try again in {seconds} s.",
                headers={"Retry-After": str(seconds)},
                reason="login-throttled",
                retry_after=seconds,
            )

    async def record_failure(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, email: str, ip: str | None
    ) -> None:
        """In a transaction of its own: the login's transaction rolls back with its 401, and
        the failure must be counted all the same."""
        auth_failures_total.inc()
        now = utcnow()
        async with sessionmaker() as session, session.begin():
            repository = LoginFailureRepository(session)
            await repository.add_failure(account_key(email), now, self.window_seconds)
            if ip:
                await repository.add_failure(ip_key(ip), now, self.window_seconds)

    async def clear_account(self, session: AsyncSession, *, email: str) -> bool:
        """After a successful login, or an admin's unlock; True when a count was cleared."""
        return await LoginFailureRepository(session).clear([account_key(email)]) > 0

    async def clear_ip(self, session: AsyncSession, *, ip: str) -> bool:
        return await LoginFailureRepository(session).clear([ip_key(ip)]) > 0

    async def purge_expired(self, session: AsyncSession) -> int:
        """Drop counters whose window has ended (for a periodic job)."""
        cutoff = utcnow() - dt.timedelta(seconds=self.window_seconds)
        return await LoginFailureRepository(session).purge_older_than(cutoff)
