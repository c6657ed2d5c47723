"""The login throttle's SQL is built once per rule, not per attempt: building it (expressions
with the attempt's literals, then their cache key) was a few ms of the event loop's CPU per
login, which a burst of logins took from every other request of the process."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from chainconsult.accounts.throttle import ThrottleRule
from tests.helpers import register

WRONG = "not the password at all"


async def test_login_attempts_do_not_build_throttle_statements_each(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await register(client)
    built: list[ThrottleRule] = []
    wait = ThrottleRule.wait

    def counted(rule: ThrottleRule, *args: object) -> object:
        built.append(rule)
        return wait(rule, *args)

    monkeypatch.setattr(ThrottleRule, "wait", counted)

    async def attempt() -> int:
        client.cookies.clear()
        response = await client.post(
            "/api/v2/auth/login", json={"email": account["email"], "password": WRONG}
        )
        return response.status_code

    assert await attempt() == 401
    after_first = len(built)
    assert [await attempt() for _ in range(3)] == [401, 401, 401]
    assert len(built) == after_first
