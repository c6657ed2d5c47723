"""`chainconsult demo-data`: a realistic marketplace to click through and load-test.

Every row has a deterministic id (UUIDv5 of a demo name) and is inserted with ON CONFLICT DO
NOTHING, so a second run adds nothing. Rows go in as multi-row INSERTs, and all 300 accounts
share one argon2 hash of the demo password: hashing is deliberately slow (~0.1 s each)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chainconsult.admin._demo_profiles import expert_texts
from chainconsult.config import Settings
from chainconsult.experts.vocabulary import Chain, Skill
from chainconsult.infra.db.engine import build_engine
from chainconsult.infra.db.session import transaction
from chainconsult.infra.security.passwords import passwords
from chainconsult.models import (
    Account,
    ExpertApplication,
    ExpertProfile,
    Project,
    Proposal,
    Review,
)

DEMO_PASSWORD = "demo password 2026"  # noqa: S105 - published: every demo account uses it
DEMO_DOMAIN = "demo.chainconsult.dev"
EXPERTS = 200
CLIENTS = 100
PROJECTS = 500
_NAMESPACE = uuid.UUID("8f3c2a57-2d7e-4b8e-9a53-6b1f0d1c9e42")
# Fixed so that every run generates the same rows (which is what makes it idempotent).
_EPOCH = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)

# fmt: off
_FIRST = (
    "Ada", "Alan", "Amara", "Ben", "Chen", "Dana", "Diego", "Elena", "Farah", "Femi", "Grace",
    "Hiro", "Ines", "Ivan", "Jade", "Jonas", "Kai", "Lena", "Leila", "Liam", "Maya", "Mateo",
    "Nadia", "Noor", "Omar", "Priya", "Quinn", "Rafael", "Sana", "Sofia", "Tariq", "Uma",
    "Vera", "Wei", "Yara", "Yusuf", "Zoe", "Aiko", "Bruno", "Chiara",
)
_LAST = (
    "Okafor", "Nakamura", "Silva", "Kowalski", "Haddad", "Novak", "Fischer", "Moreau", "Rossi",
    "Lindqvist", "Petrov", "Mensah", "Tanaka", "Duarte", "Nguyen", "Schmidt", "Kaur", "Adeyemi",
    "Horvat", "Jensen", "Costa", "Yilmaz", "Ivanova", "Larsen", "Park",
)
# fmt: on
_WORK = (
    ("Security audit of a {chain} lending protocol", "Four core contracts, about {n} lines."),
    (
        "Build a {chain} NFT marketplace",
        "Listings, royalties and lazy minting; {n} users at launch.",
    ),
    ("Design tokenomics for a {chain} DAO", "Emission schedule, vesting and governance voting."),
    ("Subgraph and indexer for {chain} events", "Index {n} contracts and serve a GraphQL API."),
    ("Zero-knowledge proof of reserves on {chain}", "Prove solvency without revealing balances."),
    ("Gas optimisation of our {chain} AMM", "Cut swap gas by a third; {n} daily swaps today."),
    ("Bridge integration between {chain} and Ethereum", "Lock-and-mint with rate limits."),
    ("MEV protection for a {chain} DEX", "Private order flow and batch auctions."),
)
_STATUSES = ("open",) * 12 + ("in_progress",) * 3 + ("completed",) * 4 + ("cancelled",)
_REVIEWS = (
    (5, "Outstanding: found a critical issue our previous auditor missed."),
    (5, "Delivered early, clear documentation, would hire again."),
    (4, "Solid work and good communication; a few days late."),
    (4, "Knew the chain inside out. Report could have been more concise."),
    (3, "Did the job, but needed a lot of back and forth."),
)


def _id(kind: str, number: int) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{kind}-{number}")


@dataclass
class DemoSummary:
    inserted: dict[str, int]
    seconds: float


class DemoDataError(Exception):
    """The demo data cannot be loaded; the message says what to do."""


def load_from_cli(settings: Settings, *, echo: Callable[[str], None]) -> DemoSummary:
    """`chainconsult demo-data`: load, report progress and the demo login."""
    return asyncio.run(_load_from_cli(settings, echo))


async def _load_from_cli(settings: Settings, echo: Callable[[str], None]) -> DemoSummary:
    engine = build_engine(settings.database, application_name="chainconsult-cli")
    try:
        echo("loading demo data")
        summary = await load_demo_data(engine, echo=echo)
    except ProgrammingError as exc:
        # psycopg's primary message is one line ('relation "accounts" does not exist').
        reason = getattr(getattr(exc.orig, "diag", None), "message_primary", None) or "error"
        raise DemoDataError(
            f"the schema is missing or old ({reason}); run `chainconsult migrate`"
        ) from None
    finally:
        await engine.dispose()
    echo(f"demo data: {sum(summary.inserted.values())} rows added in {summary.seconds:.1f} s")
    echo(
        f"log in as expert000@{DEMO_DOMAIN} ... expert199@, client000@ ... client099@ "
        f"with the password {DEMO_PASSWORD!r}"
    )
    return summary


async def load_demo_data(
    engine: AsyncEngine, *, echo: Callable[[str], None] = print
) -> DemoSummary:
    started = time.perf_counter()
    rng = random.Random(2026)  # noqa: S311 - demo content, not security
    password_hash = await passwords.hash(DEMO_PASSWORD)
    data = _generate(rng, password_hash)
    inserted: dict[str, int] = {}
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with transaction(maker) as session:
        for table, rows in data:
            inserted[table.name] = await _insert(session, table, rows)
            echo(f"  {table.name}: {inserted[table.name]} new of {len(rows)}")
        await _refresh_ratings(session, [_id("expert", n) for n in range(EXPERTS)])
    return DemoSummary(inserted=inserted, seconds=time.perf_counter() - started)


async def _insert(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    before = (await session.execute(select(func.count()).select_from(table))).scalar_one()
    # No conflict target: any unique index (id, email, one active proposal...) skips the row.
    await session.execute(insert(table).on_conflict_do_nothing(), list(rows))
    after = (await session.execute(select(func.count()).select_from(table))).scalar_one()
    return int(after - before)


async def _refresh_ratings(session: AsyncSession, expert_ids: list[uuid.UUID]) -> None:
    await session.execute(
        text(
            "UPDATE expert_profiles p SET rating_count = s.n, rating_sum = s.total, "
            "rating_avg = round(s.total::numeric / s.n, 2) "
            "FROM (SELECT expert_id, count(*) AS n, sum(rating) AS total FROM reviews "
            "      WHERE expert_id = ANY(:ids) GROUP BY expert_id) s "
            "WHERE p.id = s.expert_id"
        ),
        {"ids": expert_ids},
    )


def _generate(rng: random.Random, password_hash: str) -> list[tuple[Table, list[dict[str, Any]]]]:
    accounts: list[dict[str, Any]] = []
    applications: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    expert_skills: dict[uuid.UUID, set[str]] = {}
    skills = list(Skill)
    chains = list(Chain)

    for n in range(EXPERTS):
        expert_id = _id("expert", n)
        name = f"{_FIRST[n % len(_FIRST)]} {_LAST[(n * 7) % len(_LAST)]}"
        mine = rng.sample(skills, rng.randint(2, 4))
        their_chains = rng.sample(chains, rng.randint(1, 3))
        years = rng.randint(1, 12)
        rate = Decimal(rng.randrange(60, 400, 5))
        approved = _EPOCH - dt.timedelta(days=rng.randint(1, 400), minutes=n)
        headline, bio = expert_texts(rng, mine, their_chains, years)
        accounts.append(
            _account(expert_id, f"expert{n:03d}@{DEMO_DOMAIN}", name, "expert", password_hash)
        )
        common = {
            "headline": headline,
            "bio": bio,
            "skills": [s.value for s in mine],
            "chains": [c.value for c in their_chains],
            "hourly_rate_amount": rate,
            "hourly_rate_currency": "USD",
            "years_experience": years,
            "portfolio_links": [f"https://github.com/demo-expert-{n:03d}"],
            "wallet_address": None,
            "wallet_chain": None,
        }
        applications.append(
            {
                "id": _id("application", n),
                "account_id": expert_id,
                "revision": 1,
                "status": "approved",
                "decision_note": "Demo data: approved.",
                "decided_at": approved,
                "created_at": approved - dt.timedelta(days=2),
                "updated_at": approved,
                **common,
            }
        )
        profiles.append(
            {
                "id": expert_id,
                "display_name": name,
                "approved_at": approved,
                "created_at": approved,
                "updated_at": approved,
                **common,
            }
        )
        expert_skills[expert_id] = {s.value for s in mine}

    for n in range(CLIENTS):
        name = f"{_LAST[n % len(_LAST)]} Labs {n:03d}"
        account = _account(
            _id("client", n), f"client{n:03d}@{DEMO_DOMAIN}", name, "client", password_hash
        )
        account["plan"] = "enterprise" if n % 10 == 0 else "pro"
        accounts.append(account)

    projects: list[dict[str, Any]] = []
    proposals: list[dict[str, Any]] = []
    reviews: list[dict[str, Any]] = []
    expert_ids = list(expert_skills)
    for n in range(PROJECTS):
        project_id = _id("project", n)
        client_id = _id("client", n % CLIENTS)
        chain = rng.choice(chains)
        title, description = rng.choice(_WORK)
        low = Decimal(rng.randrange(2_000, 60_000, 500))
        status = _STATUSES[n % len(_STATUSES)]
        created = _EPOCH - dt.timedelta(days=rng.randint(0, 120), minutes=n)
        wanted = rng.sample(skills, rng.randint(1, 3))
        bidders = rng.sample(expert_ids, rng.randint(1, 6))
        hired = bidders[0] if status in ("in_progress", "completed") else None
        projects.append(
            {
                "id": project_id,
                "client_id": client_id,
                "title": title.format(chain=chain.value.title()),
                "description": description.format(n=rng.randint(500, 5000))
                + " We expect tests, a written report and a handover call.",
                "chains": [chain.value],
                "skills": [s.value for s in wanted],
                "budget_min": low,
                "budget_max": low * 2,
                "budget_currency": "USD",
                "deadline": (created + dt.timedelta(days=rng.randint(14, 120))).date(),
                "visibility": "public",
                "status": status,
                "expert_id": hired,
                "created_at": created,
                "updated_at": created,
                "completed_at": created + dt.timedelta(days=30) if status == "completed" else None,
                "cancelled_at": created + dt.timedelta(days=3) if status == "cancelled" else None,
            }
        )
        for k, expert_id in enumerate(bidders):
            if hired is not None:
                state = "accepted" if expert_id == hired else "declined"
            elif status == "cancelled":
                state = "declined"
            else:
                state = "withdrawn" if k == 5 else "pending"
            proposals.append(
                {
                    "id": _id(f"proposal-{n}", k),
                    "project_id": project_id,
                    "expert_id": expert_id,
                    "cover_letter": "I have shipped similar work: "
                    + ", ".join(sorted(expert_skills[expert_id]))
                    + f" on {chain.value}. Happy to start next week.",
                    "price_amount": low + Decimal(rng.randrange(0, int(low), 250)),
                    "price_currency": "USD",
                    "estimated_days": rng.randint(5, 60),
                    "status": state,
                    "created_at": created + dt.timedelta(hours=k + 1),
                    "updated_at": created + dt.timedelta(hours=k + 1),
                    "decided_at": None if state in ("pending", "withdrawn") else created,
                }
            )
        if status == "completed" and hired is not None:
            rating, words = rng.choice(_REVIEWS)
            reviews.append(
                {
                    "id": _id("review", n),
                    "project_id": project_id,
                    "expert_id": hired,
                    "reviewer_id": client_id,
                    "rating": rating,
                    "text": words,
                    "created_at": created + dt.timedelta(days=31),
                }
            )

    return [
        (_table(Account), accounts),
        (_table(ExpertApplication), applications),
        (_table(ExpertProfile), profiles),
        (_table(Project), projects),
        (_table(Proposal), proposals),
        (_table(Review), reviews),
    ]


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


def _account(
    account_id: uuid.UUID, email: str, name: str, role: str, password_hash: str
) -> dict[str, Any]:
    return {
        "id": account_id,
        "email": email,
        "password_hash": password_hash,
        "display_name": name,
        "role": role,
        "plan": "free",
        "is_active": True,
        # Operator-made accounts are verified as made (accounts/verification.py).
        "email_verified_at": _EPOCH - dt.timedelta(days=500),
        "created_at": _EPOCH - dt.timedelta(days=500),
        "updated_at": _EPOCH - dt.timedelta(days=500),
    }
