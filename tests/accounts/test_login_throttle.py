"""Brute-force defence on login: growing delays, then a lockout; unknown addresses treated
the same; success resets; an admin or the end of the window unlocks."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY

from tests.accounts.conftest import FrozenClock
from tests.conftest import make_settings
from tests.edge_support import app_client
from tests.helpers import PASSWORD, login, promote_to_admin, register

WRONG = "not the password at all"


def _throttle_settings(database_url: str, tmp_path: Path, **env: Any) -> Any:
    values: dict[str, Any] = {
        "REDIS_URL": None,
        "RATE_LIMIT_AUTH": "1000/minute",
        "RATE_LIMIT_ANONYMOUS": "1000/minute",
        "LOGIN_THROTTLE_FREE_FAILURES": 2,
        "LOGIN_THROTTLE_LOCKOUT_FAILURES": 3,
        "LOGIN_THROTTLE_MAX_DELAY": 1,
    }
    values.update(env)
    return make_settings(database_url, tmp_path, **values)


async def _attempt(client: httpx.AsyncClient, email: str, password: str = WRONG) -> httpx.Response:
    client.cookies.clear()
    return await client.post("/api/v2/auth/login", json={"email": email, "password": password})


def _shape(response: httpx.Response) -> tuple[int, str, str | None]:
    """What a caller sees, with the number of seconds blanked out."""
    body = response.json()
    return response.status_code, re.sub(r"\d+", "N", body["detail"]), body.get("reason")


async def _delay_then_lockout(
    client: httpx.AsyncClient, clock: FrozenClock, emails: list[str]
) -> list[list[httpx.Response]]:
    """The same steps for each address, side by side: two failures, one too soon, then (once
    the delay is over) the third failure that locks, and one more."""
    seen: list[list[httpx.Response]] = [[] for _ in emails]

    async def each() -> None:
        answers = await asyncio.gather(*(_attempt(client, email) for email in emails))
        for index, answer in enumerate(answers):
            seen[index].append(answer)

    for _ in range(3):
        await each()
    clock.advance(int(seen[0][-1].headers["Retry-After"]))
    for _ in range(2):
        await each()
    return seen


async def test_wrong_passwords_are_delayed_then_locked_the_same_for_an_unknown_email(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    failures_before = REGISTRY.get_sample_value("chainconsult_auth_failures_total") or 0.0
    settings = _throttle_settings(database_url, tmp_path)
    async with app_client(settings) as client:
        await register(client, email="victim@example.com")
        known, unknown = await _delay_then_lockout(
            client, clock, ["victim@example.com", "nobody-here@example.com"]
        )

    assert [r.status_code for r in known] == [401, 401, 429, 401, 429]
    assert [_shape(r) for r in known] == [_shape(r) for r in unknown]
    delayed, locked = known[2], known[4]
    assert delayed.json()["reason"] == "login-throttled"
    assert int(delayed.headers["Retry-After"]) == 1
    # Locked until the hour's window ends, not for a short delay.
    assert int(locked.headers["Retry-After"]) > 3000
    after = REGISTRY.get_sample_value("chainconsult_auth_failures_total") or 0.0
    assert after - failures_before == 6


async def test_right_password_is_refused_while_locked_until_an_admin_unlocks(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = _throttle_settings(
        database_url, tmp_path, LOGIN_THROTTLE_FREE_FAILURES=1, LOGIN_THROTTLE_LOCKOUT_FAILURES=2
    )
    async with app_client(settings) as client:
        admin = await register(client, email="admin@example.com")
        promote_to_admin(database_url, admin["id"])
        admin_headers = await login(client, "admin@example.com")
        victim = await register(client, email="locked@example.com")
        await _attempt(client, "locked@example.com")
        clock.advance(1)
        await _attempt(client, "locked@example.com")

        right_while_locked = await _attempt(client, "locked@example.com", PASSWORD)
        not_admin = await client.post(
            f"/api/v2/admin/users/{victim['id']}/unlock",
            headers={"Authorization": "Bearer not-a-token"},
        )
        unlocked = await client.post(
            f"/api/v2/admin/users/{victim['id']}/unlock", headers=admin_headers
        )
        right_after_unlock = await _attempt(client, "locked@example.com", PASSWORD)

    assert right_while_locked.status_code == 429
    assert not_admin.status_code == 401
    assert unlocked.status_code == 204
    assert right_after_unlock.status_code == 200


async def test_lockout_ends_with_its_window(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = _throttle_settings(
        database_url,
        tmp_path,
        LOGIN_THROTTLE_FREE_FAILURES=1,
        LOGIN_THROTTLE_LOCKOUT_FAILURES=2,
        LOGIN_THROTTLE_WINDOW=3,
    )
    async with app_client(settings) as client:
        await register(client, email="window@example.com")
        await _attempt(client, "window@example.com")
        clock.advance(1)
        await _attempt(client, "window@example.com")
        locked = await _attempt(client, "window@example.com", PASSWORD)
        clock.advance(int(locked.headers["Retry-After"]))
        after_window = await _attempt(client, "window@example.com", PASSWORD)

    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) <= 3
    assert after_window.status_code == 200


async def test_success_resets_the_account_count(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = _throttle_settings(
        database_url, tmp_path, LOGIN_THROTTLE_FREE_FAILURES=3, LOGIN_THROTTLE_LOCKOUT_FAILURES=4
    )
    async with app_client(settings) as client:
        await register(client, email="reset@example.com")
        before = [(await _attempt(client, "reset@example.com")).status_code for _ in range(2)]
        ok = await _attempt(client, "reset@example.com", PASSWORD)
        after = [(await _attempt(client, "reset@example.com")).status_code for _ in range(2)]

    assert before == [401, 401]
    assert ok.status_code == 200
    # Without the reset the fourth failure in a row would be refused (429).
    assert after == [401, 401]


async def test_one_ip_guessing_many_accounts_is_throttled(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = _throttle_settings(
        database_url,
        tmp_path,
        LOGIN_THROTTLE_IP_FREE_FAILURES=3,
        LOGIN_THROTTLE_IP_LOCKOUT_FAILURES=4,
    )
    async with app_client(settings, client_ip="192.0.2.99") as client:
        statuses = [
            (await _attempt(client, f"spray-{index}@example.com")).status_code for index in range(4)
        ]
    async with app_client(settings, client_ip="192.0.2.100") as elsewhere:
        other_ip = await _attempt(elsewhere, "spray-9@example.com")

    assert statuses == [401, 401, 401, 429]
    assert other_ip.status_code == 401


async def test_an_ipv6_host_rotating_addresses_in_its_64_is_one_guesser(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    # The clock stands still (here and above): the fourth attempt falls inside the 1 s delay
    # however long the apps take to start on a busy host.
    settings = _throttle_settings(
        database_url,
        tmp_path,
        LOGIN_THROTTLE_IP_FREE_FAILURES=3,
        LOGIN_THROTTLE_IP_LOCKOUT_FAILURES=4,
    )
    statuses = []
    for index in range(4):
        async with app_client(settings, client_ip=f"2001:db8:5:6::{index + 1:x}") as client:
            statuses.append((await _attempt(client, f"rotate-{index}@example.com")).status_code)
    async with app_client(settings, client_ip="2001:db8:5:7::1") as elsewhere:
        other_network = await _attempt(elsewhere, "rotate-9@example.com")

    assert statuses == [401, 401, 401, 429]
    assert other_network.status_code == 401


async def test_guessing_a_logged_in_password_is_throttled_like_a_login(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    """Whoever holds a stolen session cannot guess the password through the routes that ask
    for it again (change, turn off 2FA, erase): they count against the same lockout."""
    settings = _throttle_settings(
        database_url, tmp_path, LOGIN_THROTTLE_FREE_FAILURES=1, LOGIN_THROTTLE_LOCKOUT_FAILURES=2
    )
    async with app_client(settings) as client:
        await register(client, email="held@example.com")
        headers = await login(client, "held@example.com")
        changed = await client.post(
            "/api/v2/auth/password",
            json={"current_password": WRONG, "new_password": "a brand new passphrase"},
            headers=headers,
        )
        clock.advance(1)
        erased = await client.request(
            "DELETE", "/api/v2/me", json={"password": WRONG}, headers=headers
        )
        right_while_locked = await client.post(
            "/api/v2/auth/password",
            json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
            headers=headers,
        )
        me = await client.get("/api/v2/auth/me", headers=headers)

    assert (changed.status_code, changed.json()["reason"]) == (403, "password")
    assert (erased.status_code, erased.json()["reason"]) == (403, "password")
    assert right_while_locked.status_code == 429
    assert right_while_locked.json()["reason"] == "login-throttled"
    assert me.status_code == 200
