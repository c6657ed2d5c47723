"""Live updates: each account's events (notifications, messages, read markers) are rows of
``live_events``, written in the transaction of what they announce; once it commits, every
server process is woken (Redis pub/sub when REDIS_URL is set, PostgreSQL LISTEN/NOTIFY
otherwise) and sends the new rows to the account's open event streams. The rows stay a few
minutes so a reconnecting stream replays what it missed from ``Last-Event-ID``."""

from chainconsult.infra.live.bus import LiveBus, PostgresLiveBus, RedisLiveBus, build_live_bus
from chainconsult.infra.live.hub import LiveHub, build_live_hub
from chainconsult.infra.live.record import (
    attach_live_bus,
    logins_ended_after_commit,
    record_live,
    wake_after_commit,
)
from chainconsult.infra.live.stream import LiveStream

__all__ = [
    "LiveBus",
    "LiveHub",
    "LiveStream",
    "PostgresLiveBus",
    "RedisLiveBus",
    "attach_live_bus",
    "build_live_bus",
    "build_live_hub",
    "logins_ended_after_commit",
    "record_live",
    "wake_after_commit",
]
