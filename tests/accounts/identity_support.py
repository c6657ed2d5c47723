"""Steps the two-factor and wallet tests share: a movable TOTP clock, set-up, codes."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from httpx import AsyncClient

START = 1_900_000_000.0  # a fixed instant, well inside one 30-second step's start


class TotpClock:
    """The clock TOTP codes are checked against, moved by the test: no waiting for the next
    30-second step."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def next_step(self) -> None:
        self.now += 30


@pytest.fixture
def totp_clock(monkeypatch: pytest.MonkeyPatch) -> TotpClock:
    clock = TotpClock()
    monkeypatch.setattr("chainconsult.accounts.mfa.now", clock)
    return clock


def code_at(secret: str, clock: TotpClock) -> str:
    return pyotp.TOTP(secret).at(int(clock.now))


async def turn_on_two_factor(
    client: AsyncClient, headers: dict[str, str], clock: TotpClock
) -> tuple[str, list[str]]:
    """Set up and confirm two-factor login; the secret and the recovery codes."""
    setup = await client.post("/api/v2/auth/2fa/setup", headers=headers)
    assert setup.status_code == 200, setup.text
    secret: str = setup.json()["secret"]
    confirm = await client.post(
        "/api/v2/auth/2fa/confirm", json={"code": code_at(secret, clock)}, headers=headers
    )
    assert confirm.status_code == 200, confirm.text
    codes: list[str] = confirm.json()["recovery_codes"]
    return secret, codes


async def password_step(client: AsyncClient, email: str, password: str) -> dict[str, Any]:
    response = await client.post("/api/v2/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
