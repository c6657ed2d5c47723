"""Live updates across server processes: a message posted through one process reaches an
event stream held by another within a second, with Redis (pub/sub) and without it
(PostgreSQL LISTEN/NOTIFY); a reconnect with Last-Event-ID replays what was missed; read
markers and notifications arrive too; each account holds a limited number of streams; and a
stream ends with its login, however and wherever that ends."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import httpx
import psutil
import pytest
from httpx import AsyncClient

from tests.conftest import REDIS_PREFIX
from tests.conversations.sse import EventStream, event_stream
from tests.conversations.story import Thread, proposed_thread, say
from tests.helpers import PASSWORD, login
from tests.market import admin, approved_expert, client_account, proposal_body, query
from tests.servers import api_servers

pytestmark = pytest.mark.slow

UNLIMITED = dict.fromkeys(
    (
        "RATE_LIMIT_AUTH",
        "RATE_LIMIT_ANONYMOUS",
        "RATE_LIMIT_FREE",
        "RATE_LIMIT_PRO",
        "RATE_LIMIT_ENTERPRISE",
    ),
    "100000/minute",
)


async def refused_stream(base_url: str, headers: dict[str, str]) -> httpx.Response:
    """The answer to opening a stream that should be refused (a granted one is closed at
    once rather than read forever)."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=15) as http,
        http.stream("GET", "/api/v2/events", headers=headers) as response,
    ):
        if response.status_code != 200:
            await response.aread()
        return response


@pytest.fixture(scope="module", params=["redis", "postgres"])
def two_servers(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Servers]:
    """Two server processes on one database, shared by this module's tests (each test makes
    accounts of its own)."""
    tmp_path = tmp_path_factory.mktemp("live")
    env = {
        **UNLIMITED,
        "DATABASE_URL": database_url,
        "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
        "REDIS_KEY_PREFIX": f"{REDIS_PREFIX}-{uuid.uuid4().hex[:8]}",
        "SSE_MAX_CONNECTIONS_PER_USER": "3",
        "SSE_HEARTBEAT_SECONDS": "1",
    }
    if request.param == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    with api_servers(2, env, tmp_path) as urls:
        yield Servers(urls[0], urls[1], shared_limit=request.param == "redis")


@dataclass(frozen=True)
class Servers:
    one: str
    two: str
    shared_limit: bool
    """With Redis the per-account stream limit holds across processes."""


async def test_a_message_through_one_process_reaches_a_stream_on_the_other_within_1s(
    two_servers: Servers, database_url: str
) -> None:
    one_url, two_url = two_servers.one, two_servers.two
    async with AsyncClient(base_url=one_url, timeout=15) as one:
        thread = await proposed_thread(one, database_url)
        async with event_stream(two_url, thread.expert_headers) as stream:
            for text in ("First question", "Second question"):
                sent = time.monotonic()
                message = await say(one, thread, thread.client_headers, text)
                event = await stream.next(timeout=5)
                assert event.kind == "message"
                assert event.data["id"] == message["id"]
                assert event.data["body"] == text
                assert event.at - sent < 1.0, f"took {event.at - sent:.3f} s"

            # The reader's marker reaches the author's stream on the other process too.
            async with event_stream(two_url, thread.client_headers) as author_stream:
                read = await one.post(
                    f"/api/v2/conversations/{thread.id}/read",
                    json={"up_to_message_id": message["id"]},
                    headers=thread.expert_headers,
                )
                assert read.status_code == 204
                event = await author_stream.next()
                assert event.kind == "read"
                assert event.data["up_to_message_id"] == message["id"]
                assert event.data["reader_id"] == thread.expert["id"]


async def test_a_reconnect_with_last_event_id_replays_what_was_missed(
    two_servers: Servers, database_url: str
) -> None:
    one_url, two_url = two_servers.one, two_servers.two
    async with AsyncClient(base_url=one_url, timeout=15) as one:
        thread = await proposed_thread(one, database_url)
        async with event_stream(two_url, thread.expert_headers) as stream:
            await say(one, thread, thread.client_headers, "Seen live")
            last = (await stream.next()).id
        missed = [
            (await say(one, thread, thread.client_headers, text))["id"]
            for text in ("Missed one", "Missed two")
        ]
        async with event_stream(two_url, thread.expert_headers, last_event_id=last) as again:
            replayed = [await again.next(), await again.next()]
            assert [event.data["id"] for event in replayed] == missed
            assert all(event.id > last for event in replayed)
            live = await say(one, thread, thread.client_headers, "Live again")
            assert (await again.next()).data["id"] == live["id"]
        # Without Last-Event-ID a new stream starts from now: nothing old is replayed.
        async with event_stream(two_url, thread.expert_headers) as fresh:
            await asyncio.sleep(0.5)
            assert fresh.events.empty()


async def test_a_last_event_id_that_is_no_event_still_opens_a_live_stream(
    two_servers: Servers, database_url: str
) -> None:
    """A superscript digit (str.isdigit() says yes, int() says no) and an id beyond every
    event (made up, or from before a restore) both give a stream that sends what comes next."""
    one_url, two_url = two_servers.one, two_servers.two
    async with AsyncClient(base_url=one_url, timeout=15) as one:
        thread = await proposed_thread(one, database_url)
        superscript = cast(dict[str, str], {"Last-Event-ID": "\u00b2".encode("latin-1")})
        # 10**19 and twenty nines are past bigint: once a 422, after which EventSource
        # never reconnects.
        beyond = ((superscript, None), ({}, 10**18), ({}, 10**19), ({}, int("9" * 20)))
        for extra, resume in beyond:
            headers = {**thread.expert_headers, **extra}
            async with event_stream(two_url, headers, last_event_id=resume) as stream:
                said = await say(one, thread, thread.client_headers, "Still live")
                assert (await stream.next()).data["id"] == said["id"]


async def test_notifications_reach_the_stream(two_servers: Servers, database_url: str) -> None:
    one_url, two_url = two_servers.one, two_servers.two
    async with AsyncClient(base_url=one_url, timeout=15) as one:
        thread: Thread = await proposed_thread(one, database_url)
        _, other_headers = await approved_expert(one, thread.admin_headers, name="Bo Expert")
        async with event_stream(two_url, thread.client_headers) as stream:
            proposed = await one.post(
                f"/api/v2/projects/{thread.project_id}/proposals",
                json=proposal_body(),
                headers=other_headers,
            )
            assert proposed.status_code == 201
            event = await stream.next(timeout=5)
            assert event.kind == "notification"
            assert event.data["kind"] == "proposal_received"
            assert event.data["payload"]["proposal_id"] == proposed.json()["id"]


async def test_streams_per_account_are_limited(two_servers: Servers, database_url: str) -> None:
    one_url, two_url = two_servers.one, two_servers.two
    async with AsyncClient(base_url=one_url, timeout=15) as one:
        thread = await proposed_thread(one, database_url)
        headers = thread.expert_headers
        async with (
            event_stream(one_url, headers),
            event_stream(one_url, headers),
            event_stream(one_url, headers),
        ):
            refused = await refused_stream(one_url, headers)
            assert refused.status_code == 429
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["type"].endswith("/rate-limited")
            elsewhere = await refused_stream(two_url, headers)
            assert elsewhere.status_code == (429 if two_servers.shared_limit else 200)
        # Closed streams free their slots.
        async with event_stream(one_url, headers):
            pass
        one.cookies.clear()
        assert (await refused_stream(one_url, {})).status_code == 401


async def test_a_stopping_server_ends_its_streams_at_once(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Streams never finish by themselves; a server waiting for its in-flight requests would
    wait for them until killed. On SIGTERM they end, and clients reconnect elsewhere."""
    env = {
        **UNLIMITED,
        "DATABASE_URL": database_url,
        "CHAINCONSULT_DATA_DIR": str(tmp_path_factory.mktemp("stop") / "var"),
    }
    with api_servers(1, env, tmp_path_factory.mktemp("stop-logs")) as [url]:
        port = url.rsplit(":", 1)[1]
        [server] = [
            process
            for process in psutil.process_iter(["cmdline"])
            if "uvicorn" in " ".join(process.info["cmdline"] or ())
            and port in (process.info["cmdline"] or ())
        ]
        async with AsyncClient(base_url=url, timeout=15) as one:
            thread = await proposed_thread(one, database_url)
        async with event_stream(url, thread.expert_headers) as stream:
            server.send_signal(signal.SIGTERM)
            reader = asyncio.ensure_future(stream.ended.wait())
            await asyncio.wait_for(reader, 5)
        server.wait(10)


HEARTBEAT_AND_MARGIN = 4.0
"""SSE_HEARTBEAT_SECONDS (1 here) is the longest a stream outlives its login; the rest is the
two servers' share of a busy machine."""


async def ends_with_its_login(
    stream: EventStream, base_url: str, headers: dict[str, str], within: float
) -> None:
    await asyncio.wait_for(stream.ended.wait(), within)
    # EventSource reconnects by itself; the login is gone, so it is refused and stops.
    assert (await refused_stream(base_url, headers)).status_code == 401


async def test_a_stream_ends_when_its_login_is_ended_through_another_process(
    two_servers: Servers, database_url: str
) -> None:
    one_url, two_url = two_servers.one, two_servers.two
    async with AsyncClient(base_url=one_url, timeout=15) as one:
        account, stolen = await client_account(one, name="Victim")
        mine = await login(one, account["email"])
        async with event_stream(two_url, stolen) as theirs, event_stream(two_url, mine) as kept:
            ended = await one.post("/api/v2/auth/sessions/end-others", headers=mine)
            assert ended.status_code == 204
            await ends_with_its_login(theirs, two_url, stolen, HEARTBEAT_AND_MARGIN)
            assert not kept.ended.is_set()
            assert (await one.post("/api/v2/auth/logout", headers=mine)).status_code == 204
            await ends_with_its_login(kept, two_url, mine, HEARTBEAT_AND_MARGIN)


async def test_a_stream_ends_when_an_admin_ends_the_sessions_or_the_account_is_erased(
    two_servers: Servers, database_url: str
) -> None:
    one_url, two_url = two_servers.one, two_servers.two
    async with AsyncClient(base_url=one_url, timeout=15) as one:
        admin_headers = await admin(one, database_url)
        account, headers = await client_account(one, name="Departing")
        async with event_stream(two_url, headers) as stream:
            ended = await one.post(
                f"/api/v2/admin/users/{account['id']}/sessions/end", headers=admin_headers
            )
            assert ended.status_code == 204
            await ends_with_its_login(stream, two_url, headers, HEARTBEAT_AND_MARGIN)

        headers = await login(one, account["email"])
        async with event_stream(two_url, headers) as stream:
            erased = await one.request(
                "DELETE", "/api/v2/me", json={"password": PASSWORD}, headers=headers
            )
            assert erased.status_code == 204
            await ends_with_its_login(stream, two_url, headers, HEARTBEAT_AND_MARGIN)


async def test_a_stream_ends_when_its_login_expires(
    two_servers: Servers, database_url: str
) -> None:
    """Heartbeats do not keep a stream open past its login's expiry."""
    one_url, two_url = two_servers.one, two_servers.two
    async with AsyncClient(base_url=one_url, timeout=15) as one:
        account, _ = await client_account(one, name="Brief")
        headers = await login(one, account["email"])
        # This login, not yet looked up (so not cached), expires in two seconds.
        query(
            database_url,
            "UPDATE account_sessions SET expires_at = now() + interval '2 seconds'"
            " WHERE id = (SELECT id FROM account_sessions WHERE account_id = %s"
            " ORDER BY created_at DESC LIMIT 1)",
            uuid.UUID(account["id"]),
        )
        async with event_stream(two_url, headers) as stream:
            await ends_with_its_login(stream, two_url, headers, 2 + HEARTBEAT_AND_MARGIN)


@pytest.fixture(params=["redis", "postgres"])
def slow_heartbeat_servers(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Servers]:
    """Two processes whose streams see a heartbeat once a minute only."""
    tmp_path = tmp_path_factory.mktemp("live-slow")
    env = {
        **UNLIMITED,
        "DATABASE_URL": database_url,
        "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
        "REDIS_KEY_PREFIX": f"{REDIS_PREFIX}-{uuid.uuid4().hex[:8]}",
        "SSE_HEARTBEAT_SECONDS": "60",
    }
    if request.param == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    with api_servers(2, env, tmp_path) as urls:
        yield Servers(urls[0], urls[1], shared_limit=request.param == "redis")


async def test_ending_logins_ends_their_streams_at_once_not_at_the_next_heartbeat(
    slow_heartbeat_servers: Servers,
) -> None:
    """The process that ends logins tells every process, which looks those accounts' logins
    up at once (the heartbeat's look is the fallback for a lost signal)."""
    one_url, two_url = slow_heartbeat_servers.one, slow_heartbeat_servers.two
    at_once = 2.0
    async with AsyncClient(base_url=one_url, timeout=15) as one:
        account, stolen = await client_account(one, name="Victim")
        mine = await login(one, account["email"])
        async with event_stream(two_url, stolen) as theirs, event_stream(two_url, mine) as kept:
            assert (await one.post("/api/v2/auth/sessions/end-others", headers=mine)).is_success
            await ends_with_its_login(theirs, two_url, stolen, at_once)
            assert not kept.ended.is_set()
            assert (await one.post("/api/v2/auth/logout", headers=mine)).is_success
            await ends_with_its_login(kept, two_url, mine, at_once)

        headers = await login(one, account["email"])
        async with event_stream(two_url, headers) as stream:
            erased = await one.request(
                "DELETE", "/api/v2/me", json={"password": PASSWORD}, headers=headers
            )
            assert erased.status_code == 204
            await ends_with_its_login(stream, two_url, headers, at_once)
