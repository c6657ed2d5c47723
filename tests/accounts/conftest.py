from __future__ import annotations

import datetime as dt

import pytest

from chainconsult.models.base import utcnow


class FrozenClock:
    """The login throttle's clock, moved only by the test: no delay or window runs out
    behind its back, and none needs a real wait."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen = FrozenClock()
    monkeypatch.setattr("chainconsult.accounts.throttle.utcnow", frozen)
    return frozen


# The movable TOTP clock of the two-factor tests.
from tests.accounts.identity_support import totp_clock as totp_clock  # noqa: E402

# The job fixtures (a worker's resources on the test database), for the mailed-link tests.
from tests.infra.jobs.conftest import job_resources, job_settings, sessionmaker  # noqa: E402

__all__ = [
    "FrozenClock",
    "clock",
    "job_resources",
    "job_settings",
    "sessionmaker",
    "totp_clock",
]
