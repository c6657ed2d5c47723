"""The conversations group of the settings (conversations/, infra/live): here, below config,
because infra/live reads it."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from chainconsult.infra.settings import SETTINGS_CONFIG


class ConversationSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    digest_delay_seconds: float = Field(
        600.0, ge=1, le=86_400, validation_alias="MESSAGE_DIGEST_DELAY_SECONDS"
    )
    """Seconds a message stays unread before its recipient gets one email about their unread
    messages (one per burst, never one per message)."""
    sse_max_connections_per_user: int = Field(
        5, ge=1, le=1000, validation_alias="SSE_MAX_CONNECTIONS_PER_USER"
    )
    """Event streams (`GET /api/v2/events`) one account may hold open at once; more get 429."""
    sse_heartbeat_seconds: float = Field(
        15.0, gt=0, le=300, validation_alias="SSE_HEARTBEAT_SECONDS"
    )
    """Seconds between heartbeat comments on an idle event stream (keeps proxies from closing
    it, and finds closed ones)."""
    sse_replay_seconds: int = Field(300, ge=10, le=86_400, validation_alias="SSE_REPLAY_SECONDS")
    """Seconds live events are kept for a reconnecting stream's `Last-Event-ID` replay."""
