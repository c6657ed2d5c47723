"""EXPLAIN on a 10,000-row data set: the lookups, filters and sorts the app sends use their
indexes (plans taken from the statements the repositories really send)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.accounts.repository import AccountRepository
from chainconsult.infra.db.engine import build_engine
from chainconsult.infra.security.tokens import token_digest
from chainconsult.models.base import utcnow
from tests.conftest import make_settings
from tests.infra.db.conftest import libpq
from tests.infra.db.explain import plans_of

ROWS = 10_000


@pytest.fixture
async def engine(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(make_settings(database_url, tmp_path).database)
    yield engine
    await engine.dispose()


@pytest.fixture
def ten_thousand_accounts(database_url: str) -> None:
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO accounts (id, email, password_hash, display_name, role, plan, is_active) "
            "SELECT gen_random_uuid(), 'user' || n || '@example.com', 'x', 'User ' || n, "
            "'client', 'free', true FROM generate_series(1, %s) n",
            (ROWS,),
        )
        conn.execute(
            "INSERT INTO account_sessions (id, account_id, token_hash, expires_at) "
            "SELECT gen_random_uuid(), id, sha256(email::bytea), now() + interval '1 day' "
            "FROM accounts"
        )
        conn.execute("ANALYZE accounts, account_sessions")


async def test_login_lookup_by_email_uses_the_lower_email_index(
    engine: AsyncEngine, ten_thousand_accounts: None
) -> None:
    plans = await plans_of(engine, lambda s: AccountRepository(s).by_email("User77@Example.com"))

    assert len(plans) == 1
    assert "uq_accounts_email_lower" in plans[0].indexes(), plans[0]
    assert not plans[0].seq_scanned(), plans[0]


async def test_token_lookup_uses_the_token_hash_index(
    engine: AsyncEngine, ten_thousand_accounts: None
) -> None:
    digest = token_digest("user77@example.com")
    plans = await plans_of(engine, lambda s: AccountRepository(s).active_login(digest, utcnow()))

    assert len(plans) == 1
    assert "uq_account_sessions_token_hash" in plans[0].indexes(), plans[0]
    assert not plans[0].seq_scanned(), plans[0]
