"""Realistic traffic that keeps a record of every request: public directory reads (cached),
authenticated reads, proposals and registrations (acknowledged writes, each registration also
queues a welcome-email job), and a freshness probe that edits a project and reads the cached
open-project list back to catch stale reads."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import httpx
from bench.chaos._stack import Stack
from sqlalchemy.ext.asyncio import create_async_engine

from chainconsult.accounts.jobs import send_welcome_email
from chainconsult.infra.db.engine import build_sessionmaker
from chainconsult.infra.jobs import defer
from chainconsult.models import Account

DEMO_PASSWORD = "demo password 2026"
NEW_PASSWORD = "chaos run password 2026"
DIRECTORY_QUERIES = (
    "",
    "?sort=rating",
    "?skill=solidity",
    "?chain=ethereum",
    "?skill=rust&chain=solana",
    "?min_rating=4",
    "?sort=rate&max_rate=150",
    "?q=audit",
)
FRESHNESS_BOUND = 1.0
"""Seconds a cached read may lag a write while a process cannot hear invalidations (the
cache's documented bound)."""


@dataclass(slots=True)
class Outcome:
    kind: str
    started: float
    ended: float
    status: int | None
    """None: no HTTP answer (connection refused or reset, timeout)."""
    error: str | None = None
    created_id: str | None = None
    port: int | None = None
    """The local port of the client connection the request went out on, when known: matched
    against the connections a killed server worker held (chaos/_report.FaultWindow)."""

    @property
    def failed(self) -> bool:
        return self.status is None or self.status >= 500


@dataclass
class Expert:
    account_id: str
    token: str


@dataclass
class Fixtures:
    experts: list[Expert]
    expert_ids: list[str]
    pairs: list[tuple[Expert, str, str, str]]
    """(expert, project id, budget currency, price) not yet proposed on."""
    client_token: str
    freshness_project: str


@dataclass
class FreshnessLog:
    writes: list[tuple[int, float]] = field(default_factory=list)
    """(version, monotonic time the PATCH was acknowledged)."""
    reads: list[tuple[float, int]] = field(default_factory=list)
    """(monotonic start of the read, version it saw; -1 when the project was missing)."""

    def stale_reads(self, bound: float = FRESHNESS_BOUND) -> list[tuple[float, int, int]]:
        """Reads that began more than ``bound`` s after a write was acknowledged and still
        showed an older version: (start, seen, required)."""
        stale = []
        for started, seen in self.reads:
            required = max(
                (version for version, acked in self.writes if acked <= started - bound),
                default=0,
            )
            if seen < required:
                stale.append((started, seen, required))
        return stale


def _problem_slug(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"http {response.status_code}"
    kind = body.get("type", "") if isinstance(body, dict) else ""
    return str(kind).rsplit("/", 1)[-1] or f"http {response.status_code}"


def prepare(stack: Stack, *, experts: int = 12) -> Fixtures:
    """Log in demo experts, list what they may propose on, and open a project to edit."""
    base = stack.base_url
    rows = stack.query(
        "SELECT a.id::text AS id, a.email FROM accounts a JOIN expert_profiles p"
        " ON p.id = a.id WHERE a.email LIKE 'expert%%' ORDER BY a.email LIMIT %s",
        (experts,),
    )
    logged_in = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for row in rows:
            response = http.post(
                "/api/v2/auth/login", json={"email": row["email"], "password": DEMO_PASSWORD}
            )
            response.raise_for_status()
            logged_in.append(Expert(row["id"], response.json()["access_token"]))
        email = f"chaos-client-{secrets.token_hex(4)}@example.com"
        http.post(
            "/api/v2/auth/register",
            json={"email": email, "password": NEW_PASSWORD, "display_name": "Chaos Client",
                  "role": "client"},
        ).raise_for_status()  # fmt: skip
        token = http.post(
            "/api/v2/auth/login", json={"email": email, "password": NEW_PASSWORD}
        ).json()["access_token"]
        project = http.post(
            "/api/v2/projects",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "title": "Freshness probe 000000",
                "description": "A project the chaos run edits to check cached reads.",
                "chains": ["ethereum"],
                "skills": ["solidity"],
                "budget": {"min": "1000", "max": "5000", "currency": "USD"},
                "deadline": "2031-01-01",
            },
        )
        project.raise_for_status()
    by_id = {expert.account_id: expert for expert in logged_in}
    candidates = stack.query(
        "SELECT e.id::text AS expert, p.id::text AS project, p.budget_currency AS currency,"
        " p.budget_min::text AS price"
        " FROM accounts e CROSS JOIN projects p"
        " WHERE e.id = ANY(%s::uuid[]) AND p.status = 'open' AND p.visibility = 'public'"
        " AND p.client_id <> e.id AND NOT EXISTS (SELECT 1 FROM proposals x"
        "   WHERE x.project_id = p.id AND x.expert_id = e.id)",
        (list(by_id),),
    )
    pairs = [
        (by_id[row["expert"]], row["project"], row["currency"], row["price"]) for row in candidates
    ]
    random.Random(7).shuffle(pairs)
    expert_ids = [row["id"] for row in stack.query("SELECT id::text AS id FROM expert_profiles")]
    return Fixtures(logged_in, expert_ids, pairs, token, project.json()["id"])


class TracedClient:
    """One task's client, with one connection at a time, that remembers the local port of the
    connection it opened last: the port a failed request went out on, so that the report can
    tell a request sent on a connection a killed server worker held (failed by the fault,
    however late the client noticed) from one that failed for another reason."""

    def __init__(self, base_url: str, *, keep_alive: bool = True) -> None:
        self.port: int | None = None
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1 if keep_alive else 0)
        self.http = httpx.AsyncClient(
            base_url=base_url, timeout=10, limits=limits, event_hooks={"request": [self._traced]}
        )

    async def __aenter__(self) -> TracedClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()

    async def _traced(self, request: httpx.Request) -> None:
        request.extensions["trace"] = self._on_event

    async def _on_event(self, name: str, info: dict[str, Any]) -> None:
        # httpcore's trace hook: the new connection's stream once it is connected.
        if name == "connection.connect_tcp.complete" and info.get("return_value") is not None:
            address = info["return_value"].get_extra_info("client_addr")
            if address:
                self.port = int(address[1])


class Load:
    """Runs the traffic for ``duration`` seconds and keeps every outcome."""

    def __init__(
        self,
        base_url: str,
        fixtures: Fixtures,
        *,
        readers: int = 10,
        proposers: int = 3,
        registrants: int = 2,
        freshness: bool = True,
    ) -> None:
        self.base_url = base_url
        self.fixtures = fixtures
        self.readers = readers
        self.proposers = proposers
        self.registrants = registrants
        self.freshness_enabled = freshness
        self.outcomes: list[Outcome] = []
        self.freshness = FreshnessLog()
        self._pairs = iter(fixtures.pairs)
        self._serial = itertools.count(1)
        self._run_id = secrets.token_hex(3)
        self._rng = random.Random(11)

    async def _record(
        self,
        kind: str,
        request: Awaitable[httpx.Response],
        *,
        via: TracedClient,
        created: int | None = None,
    ) -> httpx.Response | None:
        # A coroutine does nothing until awaited: the clock starts with the request.
        started = time.monotonic()
        try:
            response = await request
        except httpx.HTTPError as exc:
            self.outcomes.append(
                Outcome(kind, started, time.monotonic(), None, type(exc).__name__, port=via.port)
            )
            return None
        ended = time.monotonic()
        outcome = Outcome(kind, started, ended, response.status_code, port=via.port)
        if response.status_code >= 400:
            outcome.error = _problem_slug(response)
        elif created is not None and response.status_code == created:
            outcome.created_id = str(response.json()["id"])
        self.outcomes.append(outcome)
        return response

    async def _reader(self, client: TracedClient, until: float) -> None:
        experts = self.fixtures.experts
        while time.monotonic() < until:
            roll = self._rng.random()
            if roll < 0.5:
                query = self._rng.choice(DIRECTORY_QUERIES)
                await self._record(
                    "directory", client.http.get(f"/api/v2/experts{query}"), via=client
                )
            elif roll < 0.7:
                expert = self._rng.choice(self.fixtures.expert_ids)
                await self._record(
                    "expert", client.http.get(f"/api/v2/experts/{expert}"), via=client
                )
            elif roll < 0.9:
                headers = {"Authorization": f"Bearer {self._rng.choice(experts).token}"}
                await self._record(
                    "me", client.http.get("/api/v2/auth/me", headers=headers), via=client
                )
            else:
                headers = {"Authorization": f"Bearer {self.fixtures.client_token}"}
                await self._record(
                    "open_projects",
                    client.http.get("/api/v2/projects?view=open", headers=headers),
                    via=client,
                )

    async def _proposer(self, client: TracedClient, until: float) -> None:
        while time.monotonic() < until:
            try:
                expert, project, currency, price = next(self._pairs)
            except StopIteration:
                return
            body = {
                "cover_letter": "We have audited similar protocols and can start next week.",
                "price": {"amount": price, "currency": currency},
                "estimated_days": 14,
            }
            headers = {"Authorization": f"Bearer {expert.token}"}
            await self._record(
                "propose",
                client.http.post(
                    f"/api/v2/projects/{project}/proposals", json=body, headers=headers
                ),
                via=client,
                created=201,
            )

    async def _registrant(self, client: TracedClient, until: float) -> None:
        while time.monotonic() < until:
            email = f"chaos-{self._run_id}-{next(self._serial)}@example.com"
            body = {
                "email": email,
                "password": NEW_PASSWORD,
                "display_name": "Chaos User",
                "role": "client",
            }
            await self._record(
                "register",
                client.http.post("/api/v2/auth/register", json=body),
                via=client,
                created=201,
            )

    async def _freshness(self, client: TracedClient, until: float) -> None:
        project = self.fixtures.freshness_project
        headers = {"Authorization": f"Bearer {self.fixtures.client_token}"}
        # A new connection per read, so reads land on every server worker in turn.
        async with TracedClient(self.base_url, keep_alive=False) as fresh:
            version = 0
            while time.monotonic() < until:
                version += 1
                response = await self._record(
                    "freshness_write",
                    client.http.patch(
                        f"/api/v2/projects/{project}",
                        json={"title": f"Freshness probe {version:06d}"},
                        headers=headers,
                    ),
                    via=client,
                )
                if response is not None and response.status_code == 200:
                    self.freshness.writes.append((version, time.monotonic()))
                read_until = time.monotonic() + FRESHNESS_BOUND * 1.5
                while time.monotonic() < min(read_until, until):
                    started = time.monotonic()
                    read = await self._record(
                        "freshness_read",
                        fresh.http.get("/api/v2/projects?view=open&limit=5", headers=headers),
                        via=fresh,
                    )
                    if read is not None and read.status_code == 200:
                        self.freshness.reads.append((started, _version_in(read.json(), project)))
                    await asyncio.sleep(0.05)

    async def run(self, duration: float) -> None:
        until = time.monotonic() + duration
        async with contextlib.AsyncExitStack() as stack:

            async def client() -> TracedClient:
                return await stack.enter_async_context(TracedClient(self.base_url))

            tasks: list[Awaitable[None]] = []
            tasks += [self._reader(await client(), until) for _ in range(self.readers)]
            tasks += [self._proposer(await client(), until) for _ in range(self.proposers)]
            tasks += [self._registrant(await client(), until) for _ in range(self.registrants)]
            if self.freshness_enabled:
                tasks.append(self._freshness(await client(), until))
            await asyncio.gather(*tasks)

    def acknowledged(self, kind: str) -> list[str]:
        return [
            outcome.created_id
            for outcome in self.outcomes
            if outcome.kind == kind and outcome.created_id is not None
        ]


def _version_in(page: dict[str, Any], project_id: str) -> int:
    for item in page.get("data", []):
        if item.get("id") == project_id:
            title = str(item.get("title", ""))
            try:
                return int(title.rsplit(" ", 1)[-1])
            except ValueError:
                return -1
    return -1


class JobDeferrer:
    """Queues one welcome email (with its new account) every ``interval`` s, each in its own
    transaction;
    keeps the ids of the jobs whose transaction committed."""

    def __init__(self, database_url: str, interval: float = 0.05) -> None:
        self.engine = create_async_engine(
            database_url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=2
        )
        self.sessionmaker = build_sessionmaker(self.engine)
        self.interval = interval
        self.committed: list[int] = []
        self.failed = 0
        self._number = itertools.count(1)
        self._run = secrets.token_hex(4)

    async def defer_one(self) -> None:
        number = next(self._number)
        try:
            async with self.sessionmaker() as session, session.begin():
                # What registration does, minus the password hashing: an account and its
                # welcome email, committed together.
                account = Account(
                    email=f"chaos-recipient-{number}-{self._run}@example.com",
                    password_hash="!unusable",
                    display_name="Grace",
                )
                session.add(account)
                await session.flush()
                job_id = await defer(session, send_welcome_email, account_id=str(account.id))
        except Exception:
            self.failed += 1
            return
        if job_id is not None:
            self.committed.append(job_id)

    async def run(self, until: float) -> None:
        while time.monotonic() < until:
            await self.defer_one()
            await asyncio.sleep(self.interval)
        await self.engine.dispose()
