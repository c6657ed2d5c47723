"""What the scenarios send, taken from the demo data: directory queries, expert ids, accounts
to log in, and (expert, open project) pairs that have no proposal yet, so that every write is
one the business rules accept (one active proposal per expert and project, open projects
only, not on one's own project). Tokens come from each server's own login, and the Lua
scripts read them from tab-separated files written here."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

DEMO_PASSWORD = "demo password 2026"  # published: every demo account uses it
DEMO_DOMAIN = "demo.chainconsult.dev"
DIRECTORY_QUERIES = (
    "",
    "?skill=solidity",
    "?chain=ethereum",
    "?skill=rust&chain=solana",
    "?min_rating=4",
    "?max_rate=150",
    "?q=audit",
)
"""A handful of what the directory page asks for; every one is cached after warm-up."""
READER_ACCOUNTS = 10
"""Accounts whose tokens `auth_read` rotates through (half experts, half clients)."""


@dataclass
class Pair:
    expert_email: str
    project_id: str
    price: str
    currency: str


@dataclass
class Fixtures:
    list_paths: list[str]
    page_paths: list[str]
    """The same directory queries as the directory's page (/experts), for `page_read`."""
    detail_paths: list[str]
    readers: list[str]
    """Emails of the accounts `auth_read` and `mixed` read as."""
    writers: list[str]
    """Emails of the experts who propose."""
    writer_ids: list[str]
    pairs: list[Pair]
    login_emails: list[str]


def load_fixtures(database_url: str, *, writers: int) -> Fixtures:
    with psycopg.connect(database_url, autocommit=True) as conn:
        experts = conn.execute(
            "SELECT a.id::text, a.email FROM accounts a JOIN expert_profiles p ON p.id = a.id"
            " WHERE a.email LIKE %s ORDER BY a.email",
            (f"%@{DEMO_DOMAIN}",),
        ).fetchall()
        clients = [
            email
            for (email,) in conn.execute(
                "SELECT email FROM accounts WHERE role = 'client' AND email LIKE %s ORDER BY email",
                (f"%@{DEMO_DOMAIN}",),
            ).fetchall()
        ]
        chosen = experts[:writers]
        candidates = conn.execute(
            "SELECT a.email, p.id::text, p.budget_min::text, p.budget_currency"
            " FROM accounts a CROSS JOIN projects p"
            " WHERE a.id = ANY(%s::uuid[]) AND p.status = 'open' AND p.visibility = 'public'"
            "   AND p.client_id <> a.id AND NOT EXISTS (SELECT 1 FROM proposals x"
            "     WHERE x.project_id = p.id AND x.expert_id = a.id)",
            ([expert_id for expert_id, _ in chosen],),
        ).fetchall()
    pairs = [Pair(*row) for row in candidates]
    # Shuffled, so that writes in a row hit different projects (each takes its project's
    # row lock) and different experts.
    random.Random(7).shuffle(pairs)
    half = READER_ACCOUNTS // 2
    return Fixtures(
        list_paths=[f"/api/v2/experts{query}" for query in DIRECTORY_QUERIES],
        page_paths=[f"/experts{query}" for query in DIRECTORY_QUERIES],
        detail_paths=[f"/api/v2/experts/{expert_id}" for expert_id, _ in experts],
        readers=[email for _, email in experts[-half:]] + clients[:half],
        writers=[email for _, email in chosen],
        writer_ids=[expert_id for expert_id, _ in chosen],
        pairs=pairs,
        login_emails=clients,
    )


LOGIN_TRIES = 10


async def _log_in_all(base_url: str, emails: list[str], concurrency: int) -> dict[str, str]:
    tokens: dict[str, str] = {}
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:

        async def one(email: str) -> None:
            for _ in range(LOGIN_TRIES):
                async with gate:
                    response = await http.post(
                        "/api/v2/auth/login", json={"email": email, "password": DEMO_PASSWORD}
                    )
                # The server's login-load protection on a busy host (503, then 429 for the
                # refused tries): wait as it asks.
                if response.status_code not in (429, 503):
                    break
                await asyncio.sleep(float(response.headers.get("Retry-After", 2)))
            if response.status_code != 200:
                raise RuntimeError(
                    f"login of {email} at {base_url}: {response.status_code} {response.text}"
                )
            tokens[email] = response.json()["access_token"]

        await asyncio.gather(*(one(email) for email in emails))
    return tokens


def log_in(base_url: str, emails: list[str], *, concurrency: int = 2) -> dict[str, str]:
    """Bearer tokens from the server's own login (argon2: about 0.1 s of CPU each). Two at a
    time, the cores' count: on a busy host more would wait past LOGIN_HASH_WAIT_MS, be shed,
    and count as failures until the account's throttle refuses the harness."""
    return asyncio.run(_log_in_all(base_url, sorted(set(emails)), concurrency))


def tokens_valid(base_url: str, tokens: dict[str, str]) -> bool:
    """Whether the tokens still work (a restarted server may not know them)."""
    token = next(iter(tokens.values()))
    response = httpx.get(
        f"{base_url}/api/v2/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    return response.status_code == 200


def working_tokens(
    base_url: str,
    fixtures: Fixtures,
    known: dict[str, str] | None,
    *,
    name: str,
    progress: Callable[[str], None],
) -> dict[str, str]:
    """``known`` while they still work on the server at ``base_url`` (servers sharing a
    database share logins), else fresh logins of the demo accounts the scripts use."""
    if known and tokens_valid(base_url, known):
        return known
    accounts = fixtures.readers + fixtures.writers
    progress(f"logging {len(set(accounts))} demo accounts in to {name}")
    return log_in(base_url, accounts)


@dataclass
class FixtureFiles:
    """The files the Lua scripts read, for one server's tokens."""

    lists: Path
    pages: Path
    details: Path
    tokens: Path
    pairs: Path
    logins: Path

    def names(self) -> dict[str, str]:
        """How the results show each file."""
        return {
            str(self.lists): "<directory-paths.tsv>",
            str(self.pages): "<directory-page-paths.tsv>",
            str(self.details): "<expert-paths.tsv>",
            str(self.tokens): "<tokens.tsv>",
            str(self.pairs): "<proposal-pairs.tsv>",
            str(self.logins): "<logins.tsv>",
        }


def write_files(directory: Path, fixtures: Fixtures, tokens: dict[str, str]) -> FixtureFiles:
    directory.mkdir(parents=True, exist_ok=True)
    files = FixtureFiles(
        lists=directory / "directory-paths.tsv",
        pages=directory / "directory-page-paths.tsv",
        details=directory / "expert-paths.tsv",
        tokens=directory / "tokens.tsv",
        pairs=directory / "proposal-pairs.tsv",
        logins=directory / "logins.tsv",
    )
    files.lists.write_text("".join(f"{path}\n" for path in fixtures.list_paths))
    files.pages.write_text("".join(f"{path}\n" for path in fixtures.page_paths))
    files.details.write_text("".join(f"{path}\n" for path in fixtures.detail_paths))
    # Without tokens (public reads only), the token files stay empty.
    files.tokens.write_text("".join(f"{tokens[e]}\n" for e in fixtures.readers if e in tokens))
    files.pairs.write_text(
        "".join(
            f"{pair.project_id}\t{tokens[pair.expert_email]}\t{pair.price}\t{pair.currency}\n"
            for pair in fixtures.pairs
            if pair.expert_email in tokens
        )
    )
    files.logins.write_text(
        "".join(f"{email}\t{DEMO_PASSWORD}\n" for email in fixtures.login_emails)
    )
    return files


def database_now(database_url: str) -> dt.datetime:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def remove_writes(database_url: str, fixtures: Fixtures, since: dt.datetime) -> int:
    """Delete the proposals a write run made (and the notifications they raised), so the
    next run, on either server, finds the same pairs free and the same data."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        deleted = conn.execute(
            "DELETE FROM proposals WHERE created_at >= %s AND expert_id = ANY(%s::uuid[])",
            (since, fixtures.writer_ids),
        ).rowcount
        conn.execute("DELETE FROM notifications WHERE created_at >= %s", (since,))
    return deleted
