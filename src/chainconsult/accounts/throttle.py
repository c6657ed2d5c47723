"""Brute-force defence for login: failures are counted per account and per client IP; past a
few, each further attempt must wait a delay that doubles; past the lockout count the key is
refused until its window ends (ASVS 2.2.1: at most 100 failed attempts per hour per account)
or an admin unlocks it. A success clears the account's count.

An attempt is counted as a failure *before* its password is checked (``reserve``): one
conditional upsert per key adds it only while the key may try, so however many attempts arrive
at once, no more passwords are checked than the rules allow (a check-then-count let a burst of
110 through a lockout at 20). The count commits before the check and stays unless the password
proves right: then the account's count is cleared and the IP gets its attempt back.

Accounts are keyed by a hash of the normalised address typed, not by the account row, so an
address without an account is delayed and locked exactly like one with: the answers never tell
them apart. Refused attempts do not check the password at all, so they also cost no argon2 time.

The repository sits in this module rather than accounts/repository.py because its rows are
written outside the request's transaction (see ``reserve``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    String,
    bindparam,
    case,
    delete,
    extract,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.config import LoginThrottleSettings
from chainconsult.errors import ChainconsultError, ServiceUnavailable, TooManyRequests
from chainconsult.infra.db.transaction import one_statement
from chainconsult.infra.security.client_ip import client_network
from chainconsult.models.base import utcnow
from chainconsult.models.login_throttle import LoginFailureCounter

_COUNTER = LoginFailureCounter.__table__.c


def account_key(email: str) -> str:
    """The counter key of an address (already normalised: accounts.schemas.normalize_email)."""
    return "email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def ip_key(ip: str) -> str:
    # Hashed like the address: the table holds no raw personal value to erase or leak. By
    # network, as the rate limits: an IPv6 host rotating addresses in its /64 is one client.
    return "ip:" + hashlib.sha256(client_network(ip).encode()).hexdigest()


def _keys(email: str, ip: str | None) -> list[str]:
    return [account_key(email), *([ip_key(ip)] if ip else [])]


_KEY = bindparam("key", type_=String)
_KEYS = bindparam("keys", type_=String, expanding=True)
_NOW = bindparam("now", type_=DateTime(timezone=True))
"""The statements below are built once (per rule) over these parameters: building one per
call, each with its own literals, was a few ms of the event loop's CPU per login
(docs/decisions/0041-login-burst-leaves-the-loop-to-readers.md)."""


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    free_failures: int
    lockout_failures: int
    max_delay_seconds: int
    window_seconds: int

    def wait(self) -> ColumnElement[float]:
        """Seconds before a counter's key may try again at ``:now`` (0 or less: now), as SQL
        over its row, so that the check and the count it guards are one statement."""
        window_end = _COUNTER.window_started_at + dt.timedelta(seconds=self.window_seconds)
        delay = func.least(
            self.max_delay_seconds, func.power(2, _COUNTER.failures - self.free_failures)
        )
        return case(
            (window_end <= _NOW, 0.0),
            (_COUNTER.failures >= self.lockout_failures, extract("epoch", window_end - _NOW)),
            (_COUNTER.failures < self.free_failures, 0.0),
            else_=extract("epoch", _COUNTER.last_failure_at - _NOW) + delay,
        )


@cache
def _count_attempt(rule: ThrottleRule) -> Select[tuple[int, float]]:
    """Count an attempt on ``:key`` at ``:now`` if ``rule`` lets it try (see ``count_attempt``):
    answers (counted, wait)."""
    stale = _COUNTER.window_started_at <= _NOW - dt.timedelta(seconds=rule.window_seconds)
    counted = (
        insert(LoginFailureCounter)
        .values(key=_KEY, failures=1, window_started_at=_NOW, last_failure_at=_NOW)
        .on_conflict_do_update(
            index_elements=[_COUNTER.key],
            set_={
                "failures": case((stale, 1), else_=_COUNTER.failures + 1),
                "window_started_at": case((stale, _NOW), else_=_COUNTER.window_started_at),
                "last_failure_at": _NOW,
            },
            where=rule.wait() <= 0,
        )
        .returning(_COUNTER.key)
        .cte("counted")
    )
    return select(
        select(func.count()).select_from(counted).scalar_subquery().label("counted"),
        # The row as the statement's snapshot saw it: close enough for a Retry-After.
        select(rule.wait()).where(_COUNTER.key == _KEY).scalar_subquery().label("wait"),
    )


_UNCOUNTED = (
    update(LoginFailureCounter)
    .where(_COUNTER.key.in_(_KEYS))
    .values(failures=func.greatest(_COUNTER.failures - 1, 0))
    .returning(_COUNTER.key)
)
_FAILED_AT = (
    update(LoginFailureCounter)
    .where(_COUNTER.key.in_(_KEYS))
    .values(last_failure_at=_NOW)
    .returning(_COUNTER.key)
)
_CLEARED = delete(LoginFailureCounter).where(_COUNTER.key.in_(_KEYS))


class LoginFailureRepository:
    """Writes about one attempt (count, give back, stamp a failure) are single statements sent
    in autocommit: a key's row is locked only while its statement runs, so a burst on one
    account queues on it for microseconds rather than holding a pooled connection each (a
    transaction around the count kept 30 connections waiting on one row)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count_attempt(self, key: str, rule: ThrottleRule, now: dt.datetime) -> float | None:
        """Add one attempt to ``key`` if its rule lets it try now (a stale window restarts)
        and answer None; else count nothing and answer the seconds it must wait. The row
        lock orders concurrent attempts, and each sees the count the one before it left."""
        row = await one_statement(self.session, _count_attempt(rule), {"key": key, "now": now})
        assert row is not None  # a SELECT without FROM answers one row
        return None if row.counted else float(row.wait or 0)

    async def uncount_attempt(self, keys: list[str]) -> None:
        await one_statement(self.session, _UNCOUNTED, {"keys": keys})

    async def failed_at(self, keys: list[str], now: dt.datetime) -> None:
        await one_statement(self.session, _FAILED_AT, {"keys": keys, "now": now})

    async def clear(self, keys: list[str]) -> int:
        result = await self.session.execute(_CLEARED, {"keys": keys})
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def purge_older_than(self, cutoff: dt.datetime) -> int:
        result = await self.session.execute(
            delete(LoginFailureCounter).where(_COUNTER.window_started_at < cutoff)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


E = TypeVar("E", bound=ChainconsultError)


def try_again_later(error: type[E], what: str, wait_seconds: float, **extensions: Any) -> E:
    """``error`` saying ``what`` and when to try again (whole seconds, at least 1), in its
    detail, its ``Retry-After`` header and its ``retry_after`` field: every wait of the
    login and its mailed links is answered alike."""
    seconds = max(1, math.ceil(wait_seconds))
    return error(
        f"{what}; try again in {seconds} s.",
        headers={"Retry-After": str(seconds)},
        retry_after=seconds,
        **extensions,
    )


class LoginBusy(Exception):
    """No database slot for a login came free within its wait: the login is shed."""


def login_busy(wait_seconds: float) -> ServiceUnavailable:
    """The answer to a shed login (no database or hashing slot within ``wait_seconds``),
    wherever it is shed: in the login (accounts/service.py) or before it (login_shortcut.py)."""
    return try_again_later(
        ServiceUnavailable, "Too many logins are being checked", wait_seconds, reason="login-busy"
    )


class LoginGate:
    """At most ``slots`` logins of one process use the database at once (``reserve`` and the
    account read); up to as many again wait for a slot, holding no connection; the rest are
    shed at once. Attempts on one account queue on its counter row, and a burst of 200 once
    left every pooled connection waiting there; admitted, each such attempt also costs the
    event loop a few ms, so the excess of a burst must cost nothing but its refusal for other
    users' requests to keep their latency."""

    def __init__(self, slots: int) -> None:
        self._slots = asyncio.Semaphore(slots)
        self._queue = slots
        self._waiting = 0

    @property
    def full(self) -> bool:
        """Every slot taken and the queue full: a login arriving now is shed at once."""
        return self._waiting >= self._queue and self._slots.locked()

    @asynccontextmanager
    async def admitted(self, wait_seconds: float) -> AsyncIterator[None]:
        """Hold a slot for the block; LoginBusy when the queue is full or no slot comes free
        within ``wait_seconds``."""
        if self.full:
            raise LoginBusy()
        self._waiting += 1
        try:
            async with asyncio.timeout(wait_seconds):
                await self._slots.acquire()
        except TimeoutError:
            raise LoginBusy() from None
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()


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

    async def reserve(self, session: AsyncSession, *, email: str, ip: str | None) -> None:
        """Count this attempt as a failure before its password is checked, committed at once,
        or raise 429 with Retry-After while the account or the IP must wait (counting
        nothing)."""
        repository = LoginFailureRepository(session)
        now = utcnow()
        wait = await repository.count_attempt(account_key(email), self.account_rule, now)
        if wait is None and ip:
            wait = await repository.count_attempt(ip_key(ip), self.ip_rule, now)
            if wait is not None:
                # Counted on the account for an attempt that will not be checked after all.
                await repository.uncount_attempt([account_key(email)])
        if wait is not None:
            # One wording for a delay and a lockout, for known and unknown addresses alike.
            raise try_again_later(
                TooManyRequests, "Too many failed logins", wait, reason="login-throttled"
            )

    async def failed(self, session: AsyncSession, *, email: str, ip: str | None) -> None:
        """After a wrong password (already counted): the next delay runs from this answer,
        not from when the attempt began, which is a password check earlier."""
        await LoginFailureRepository(session).failed_at(_keys(email, ip), utcnow())

    async def succeeded(self, session: AsyncSession, *, email: str, ip: str | None) -> None:
        """After the right password, in the login's transaction: the account's count starts
        again, and the IP, which counts failures only, gets this attempt back."""
        if ip:
            await session.execute(_UNCOUNTED, {"keys": [ip_key(ip)]})
        await LoginFailureRepository(session).clear([account_key(email)])

    async def clear_account(self, session: AsyncSession, *, email: str) -> bool:
        """After an admin's unlock; True when a count was cleared."""
        return await LoginFailureRepository(session).clear([account_key(email)]) > 0

    async def purge_expired(self, session: AsyncSession) -> int:
        """Drop counters whose window has ended (for a periodic job)."""
        cutoff = utcnow() - dt.timedelta(seconds=self.window_seconds)
        return await LoginFailureRepository(session).purge_older_than(cutoff)
