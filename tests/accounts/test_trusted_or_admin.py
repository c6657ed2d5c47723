"""Operator endpoints (/metrics, detailed health) open to TRUSTED_IPS or to admins."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select, update

from chainconsult.accounts.auth import TrustedOrAdmin
from chainconsult.accounts.throttle import LoginThrottle
from chainconsult.app import create_app
from chainconsult.infra.resources import resources_of
from chainconsult.models import LoginFailureCounter
from chainconsult.models.base import utcnow
from tests.conftest import make_settings
from tests.helpers import login, promote_to_admin, register


async def test_trusted_ip_or_admin_may_call_an_operator_endpoint(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, TRUSTED_IPS="10.9.0.0/16")
    app = create_app(settings)

    @app.get("/api/v2/test-operator")
    async def operator_only(caller: TrustedOrAdmin) -> dict[str, bool]:
        return {"admin": caller is not None and caller.is_admin}

    async with LifespanManager(app) as manager:

        def client(ip: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=manager.app, client=(ip, 5000))
            return httpx.AsyncClient(transport=transport, base_url="http://testserver")

        async with client("10.9.1.1") as trusted, client("192.0.2.1") as outside:
            from_trusted = await trusted.get("/api/v2/test-operator")
            anonymous = await outside.get("/api/v2/test-operator")
            admin = await register(outside)
            promote_to_admin(database_url, admin["id"])
            user = await register(outside)
            admin_headers = await login(outside, admin["email"])
            user_headers = await login(outside, user["email"])
            outside.cookies.clear()
            as_user = await outside.get("/api/v2/test-operator", headers=user_headers)
            as_admin = await outside.get("/api/v2/test-operator", headers=admin_headers)

    assert from_trusted.status_code == 200
    assert anonymous.status_code == 401
    assert as_user.status_code == 403
    assert as_admin.json() == {"admin": True}


async def test_expired_login_counters_are_purged(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, LOGIN_THROTTLE_WINDOW=60)
    app = create_app(settings)
    throttle = LoginThrottle(settings.login_throttle)
    async with LifespanManager(app):
        maker = resources_of(app).sessionmaker
        async with maker() as session:  # the throttle commits each count itself
            await throttle.reserve(session, email="old@example.com", ip="192.0.2.1")
        async with maker() as session, session.begin():
            await session.execute(
                update(LoginFailureCounter).values(
                    window_started_at=utcnow() - dt.timedelta(seconds=120)
                )
            )
        async with maker() as session:  # the throttle commits each count itself
            await throttle.reserve(session, email="new@example.com", ip=None)
        async with maker() as session, session.begin():
            purged = await throttle.purge_expired(session)
        async with maker() as session:
            left = await session.scalar(select(func.count()).select_from(LoginFailureCounter))

    assert purged == 2
    assert left == 1
