"""Each heartbeat the hub ends the streams whose login has expired or no longer resolves, with
one lookup per token however many streams share it; when the lookup itself fails (database
and cache away) the streams stay, but expiry still ends them; and the wake-up signal that
says "logins of these accounts ended". The end-to-end behaviour across processes is in
tests/conversations/test_live_events.py."""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

import pytest

from chainconsult.infra.live.bus import _parse, _payload
from chainconsult.infra.live.hub import LiveHub
from chainconsult.infra.live.slots import StreamSlots
from chainconsult.infra.live.stream import LiveStream
from chainconsult.infra.settings.conversations import ConversationSettings


def hub_holding(*streams: LiveStream) -> LiveHub:
    # The pass under test reads no table and wakes nobody: no sessionmaker, no bus.
    slots = StreamSlots(5, redis=None, key_prefix="test", ttl_seconds=3)
    hub = LiveHub(cast(Any, None), cast(Any, None), slots, ConversationSettings())
    for stream in streams:
        hub.streams.setdefault(stream.account_id, set()).add(stream)
    return hub


def held(credential: str, expires_in: float) -> LiveStream:
    return LiveStream(
        account_id=uuid.uuid4(),
        floor=0,
        credential=credential,
        expires_at=time.time() + expires_in,
    )


async def test_streams_of_expired_and_revoked_logins_end_and_each_token_is_looked_up_once() -> None:
    expired = held("expired", -1)
    revoked = [held("revoked", 600), held("revoked", 600)]
    valid = held("valid", 600)
    hub = hub_holding(expired, *revoked, valid)
    looked_up: list[str] = []

    async def check(token: str) -> float | None:
        looked_up.append(token)
        return time.time() + 60 if token == "valid" else None

    hub.check_login = check
    await hub._end_lapsed_logins()
    assert expired.closed
    assert all(stream.closed for stream in revoked)
    assert not valid.closed
    assert valid.expires_at < time.time() + 61  # the login's current expiry
    assert sorted(looked_up) == ["revoked", "valid"]


async def test_a_failing_lookup_keeps_the_streams_but_not_past_their_expiry() -> None:
    expired, valid = held("expired", -1), held("valid", 600)
    hub = hub_holding(expired, valid)

    async def check(token: str) -> float | None:
        raise ConnectionError("database away")

    hub.check_login = check
    await hub._end_lapsed_logins()
    assert expired.closed
    assert not valid.closed


def test_the_wake_up_signal_carries_ended_logins_beside_new_events() -> None:
    """An ``ended:`` id is skipped by a process of the version before (uuid.UUID refuses it),
    so processes of both versions share a channel during a rolling deploy."""
    events, ended = [uuid.uuid4(), uuid.uuid4()], [uuid.uuid4()]
    payload = _payload(events, ended)
    assert _parse(payload) == (events, ended)
    assert _parse(payload.encode()) == (events, ended)
    with pytest.raises(ValueError, match="hexadecimal UUID"):
        uuid.UUID(payload.split(",")[-1])
