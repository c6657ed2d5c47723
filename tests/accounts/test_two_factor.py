"""TOTP two-factor login: set-up, the two-step login, single-use codes and recovery codes,
the five-attempt limit of an mfa_token, turning it off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pyotp
import pytest
from httpx import AsyncClient

from chainconsult.app import create_app
from tests.accounts.conftest import FrozenClock
from tests.accounts.identity_support import (
    TotpClock,
    code_at,
    password_step,
    turn_on_two_factor,
)
from tests.conftest import make_settings
from tests.helpers import PASSWORD, login, register, serving


async def test_set_up_shows_secret_once_and_turns_on_only_after_a_right_code(
    client: AsyncClient, totp_clock: TotpClock
) -> None:
    await register(client, email="tess@example.com")
    headers = await login(client, "tess@example.com")

    setup = (await client.post("/api/v2/auth/2fa/setup", headers=headers)).json()
    assert setup["otpauth_uri"].startswith("otpauth://totp/chainconsult:tess%40example.com?")
    assert f"secret={setup['secret']}" in setup["otpauth_uri"]
    # Pending: the password alone still logs in.
    assert "access_token" in await password_step(client, "tess@example.com", PASSWORD)

    wrong = await client.post("/api/v2/auth/2fa/confirm", json={"code": "000000"}, headers=headers)
    assert wrong.status_code == 403
    assert wrong.json()["type"].endswith("/invalid-code")

    right = await client.post(
        "/api/v2/auth/2fa/confirm",
        json={"code": code_at(setup["secret"], totp_clock)},
        headers=headers,
    )
    assert right.status_code == 200
    codes = right.json()["recovery_codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10

    me = (await client.get("/api/v2/auth/me", headers=headers)).json()
    assert me["mfa_enabled"] is True
    again = await client.post("/api/v2/auth/2fa/setup", headers=headers)
    assert again.status_code == 409  # the secret is never handed out again


async def test_login_takes_two_steps_and_the_first_opens_no_session(
    client: AsyncClient, totp_clock: TotpClock
) -> None:
    await register(client, email="uma@example.com")
    secret, _ = await turn_on_two_factor(client, await login(client, "uma@example.com"), totp_clock)
    client.cookies.clear()
    totp_clock.next_step()

    first = await client.post(
        "/api/v2/auth/login", json={"email": "uma@example.com", "password": PASSWORD}
    )
    assert first.status_code == 200
    body = first.json()
    assert body["mfa_required"] is True
    assert body["expires_in"] > 0
    assert "access_token" not in body
    assert not first.headers.get_list("set-cookie")

    second = await client.post(
        "/api/v2/auth/login/mfa",
        json={"mfa_token": body["mfa_token"], "code": code_at(secret, totp_clock)},
    )
    assert second.status_code == 200, second.text
    assert second.json()["token_type"] == "bearer"
    assert {"session", "csrf_token"} <= set(client.cookies.keys())
    me = await client.get(
        "/api/v2/auth/me", headers={"Authorization": f"Bearer {second.json()['access_token']}"}
    )
    assert me.json()["email"] == "uma@example.com"


async def test_the_password_step_still_goes_through_the_login_throttle(
    client: AsyncClient, totp_clock: TotpClock
) -> None:
    await register(client, email="val@example.com")
    await turn_on_two_factor(client, await login(client, "val@example.com"), totp_clock)
    wrong = await client.post(
        "/api/v2/auth/login", json={"email": "val@example.com", "password": "wrong password!"}
    )
    assert wrong.status_code == 401
    assert "mfa_token" not in wrong.json()


async def test_a_code_cannot_be_used_twice(client: AsyncClient, totp_clock: TotpClock) -> None:
    await register(client, email="wes@example.com")
    secret, _ = await turn_on_two_factor(client, await login(client, "wes@example.com"), totp_clock)
    # The code that confirmed set-up is spent already.
    replay = await password_step(client, "wes@example.com", PASSWORD)
    refused = await client.post(
        "/api/v2/auth/login/mfa",
        json={"mfa_token": replay["mfa_token"], "code": code_at(secret, totp_clock)},
    )
    assert refused.status_code == 401
    assert refused.json()["type"].endswith("/invalid-code")

    totp_clock.next_step()
    code = code_at(secret, totp_clock)
    first = await password_step(client, "wes@example.com", PASSWORD)
    used = await client.post(
        "/api/v2/auth/login/mfa", json={"mfa_token": first["mfa_token"], "code": code}
    )
    assert used.status_code == 200
    second = await password_step(client, "wes@example.com", PASSWORD)
    reused = await client.post(
        "/api/v2/auth/login/mfa", json={"mfa_token": second["mfa_token"], "code": code}
    )
    assert reused.status_code == 401
    assert reused.json()["reason"] == "code"


async def test_a_recovery_code_works_once(client: AsyncClient, totp_clock: TotpClock) -> None:
    await register(client, email="xia@example.com")
    _, codes = await turn_on_two_factor(client, await login(client, "xia@example.com"), totp_clock)

    first = await password_step(client, "xia@example.com", PASSWORD)
    ok = await client.post(
        "/api/v2/auth/login/mfa",
        json={"mfa_token": first["mfa_token"], "recovery_code": codes[3].upper()},
    )
    assert ok.status_code == 200
    second = await password_step(client, "xia@example.com", PASSWORD)
    again = await client.post(
        "/api/v2/auth/login/mfa",
        json={"mfa_token": second["mfa_token"], "recovery_code": codes[3]},
    )
    assert again.status_code == 401
    assert again.json()["type"].endswith("/invalid-code")


@pytest.fixture
async def roomy_client(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncClient]:
    """A login throttle that lets more failures through than an mfa_token does."""
    settings = make_settings(database_url, tmp_path, LOGIN_THROTTLE_FREE_FAILURES="10")
    async with serving(create_app(settings)) as http:
        yield http


async def test_five_wrong_codes_end_the_mfa_token(
    roomy_client: AsyncClient, totp_clock: TotpClock
) -> None:
    client = roomy_client
    await register(client, email="yan@example.com")
    secret, _ = await turn_on_two_factor(client, await login(client, "yan@example.com"), totp_clock)
    totp_clock.next_step()
    token = (await password_step(client, "yan@example.com", PASSWORD))["mfa_token"]
    for _ in range(5):
        wrong = await client.post(
            "/api/v2/auth/login/mfa", json={"mfa_token": token, "code": "123456"}
        )
        assert wrong.status_code == 401
        assert wrong.json()["reason"] == "code"

    right = await client.post(
        "/api/v2/auth/login/mfa", json={"mfa_token": token, "code": code_at(secret, totp_clock)}
    )
    assert right.status_code == 401
    assert right.json()["reason"] == "mfa-token"
    # A fresh password step gives a fresh token, and the right code works with it.
    fresh = (await password_step(client, "yan@example.com", PASSWORD))["mfa_token"]
    ok = await client.post(
        "/api/v2/auth/login/mfa", json={"mfa_token": fresh, "code": code_at(secret, totp_clock)}
    )
    assert ok.status_code == 200


async def test_wrong_codes_count_against_the_login_throttle_like_wrong_passwords(
    client: AsyncClient, totp_clock: TotpClock, clock: FrozenClock
) -> None:
    """New mfa_tokens buy no more guesses: the account's count (5 free failures here) takes
    the password steps and every code, and only a right code clears it."""
    await register(client, email="una@example.com")
    secret, _ = await turn_on_two_factor(client, await login(client, "una@example.com"), totp_clock)
    totp_clock.next_step()
    answers = []
    for _ in range(2):
        token = (await password_step(client, "una@example.com", PASSWORD))["mfa_token"]
        for _ in range(2):
            wrong = await client.post(
                "/api/v2/auth/login/mfa", json={"mfa_token": token, "code": "123456"}
            )
            answers.append(wrong.status_code)
    # Two password steps and four codes: the sixth attempt must wait, right code or not.
    assert answers == [401, 401, 401, 429]
    right = {"mfa_token": token, "code": code_at(secret, totp_clock)}
    waiting = await client.post("/api/v2/auth/login/mfa", json=right)
    assert waiting.status_code == 429
    assert int(waiting.headers["retry-after"]) >= 1
    password_waits = await client.post(
        "/api/v2/auth/login", json={"email": "una@example.com", "password": PASSWORD}
    )
    assert password_waits.status_code == 429

    clock.advance(int(waiting.headers["retry-after"]))
    assert (await client.post("/api/v2/auth/login/mfa", json=right)).status_code == 200
    # The right code cleared the count: the next logins start afresh.
    for _ in range(3):
        totp_clock.next_step()
        token = (await password_step(client, "una@example.com", PASSWORD))["mfa_token"]
        again = {"mfa_token": token, "code": code_at(secret, totp_clock)}
        assert (await client.post("/api/v2/auth/login/mfa", json=again)).status_code == 200


async def test_an_mfa_token_logs_in_once(client: AsyncClient, totp_clock: TotpClock) -> None:
    await register(client, email="zed@example.com")
    _, codes = await turn_on_two_factor(client, await login(client, "zed@example.com"), totp_clock)
    token = (await password_step(client, "zed@example.com", PASSWORD))["mfa_token"]
    ok = await client.post(
        "/api/v2/auth/login/mfa", json={"mfa_token": token, "recovery_code": codes[0]}
    )
    assert ok.status_code == 200
    again = await client.post(
        "/api/v2/auth/login/mfa", json={"mfa_token": token, "recovery_code": codes[1]}
    )
    assert again.status_code == 401
    assert again.json()["reason"] == "mfa-token"


async def test_turning_off_needs_password_and_code(
    client: AsyncClient, totp_clock: TotpClock
) -> None:
    await register(client, email="amy@example.com")
    headers = await login(client, "amy@example.com")
    secret, _ = await turn_on_two_factor(client, headers, totp_clock)
    totp_clock.next_step()

    wrong_password = await client.request(
        "DELETE",
        "/api/v2/auth/2fa",
        json={"password": "not my password", "code": code_at(secret, totp_clock)},
        headers=headers,
    )
    assert wrong_password.status_code == 403
    assert wrong_password.json()["reason"] == "password"
    wrong_code = await client.request(
        "DELETE", "/api/v2/auth/2fa", json={"password": PASSWORD, "code": "000000"}, headers=headers
    )
    assert wrong_code.status_code == 403
    assert wrong_code.json()["type"].endswith("/invalid-code")

    off = await client.request(
        "DELETE",
        "/api/v2/auth/2fa",
        json={"password": PASSWORD, "code": code_at(secret, totp_clock)},
        headers=headers,
    )
    assert off.status_code == 204
    assert "access_token" in await password_step(client, "amy@example.com", PASSWORD)
    me = (await client.get("/api/v2/auth/me", headers=headers)).json()
    assert me["mfa_enabled"] is False


async def test_otpauth_secret_matches_what_an_authenticator_computes(
    client: AsyncClient, totp_clock: TotpClock
) -> None:
    await register(client, email="bob2@example.com")
    headers = await login(client, "bob2@example.com")
    setup = (await client.post("/api/v2/auth/2fa/setup", headers=headers)).json()
    parsed = pyotp.parse_uri(setup["otpauth_uri"])
    assert isinstance(parsed, pyotp.TOTP)
    code = parsed.at(int(totp_clock.now))
    confirm = await client.post("/api/v2/auth/2fa/confirm", json={"code": code}, headers=headers)
    assert confirm.status_code == 200


async def test_codes_in_other_scripts_or_not_text_at_all_are_wrong_codes(
    client: AsyncClient, totp_clock: TotpClock
) -> None:
    await register(client, email="zaid@example.com")
    headers = await login(client, "zaid@example.com")
    setup = (await client.post("/api/v2/auth/2fa/setup", headers=headers)).json()
    arabic = "".join(chr(0x0660 + int(digit)) for digit in code_at(setup["secret"], totp_clock))
    confirm = await client.post("/api/v2/auth/2fa/confirm", json={"code": arabic}, headers=headers)
    assert confirm.status_code == 403
    assert confirm.json()["type"].endswith("/invalid-code")
    await turn_on_two_factor(client, headers, totp_clock)

    step = await password_step(client, "zaid@example.com", PASSWORD)
    token = step["mfa_token"]
    # The second holds a lone surrogate: valid JSON, not encodable text.
    for body, problem in (
        (f'{{"code": "{arabic}"}}', (401, "/invalid-code")),
        ('{"recovery_code": "abcd-\\ud800"}', (422, "/validation-error")),
    ):
        refused = await client.post(
            "/api/v2/auth/login/mfa",
            content=body[:-1] + f', "mfa_token": "{token}"}}',
            headers={"Content-Type": "application/json"},
        )
        assert refused.status_code == problem[0], refused.text
        assert refused.json()["type"].endswith(problem[1])
