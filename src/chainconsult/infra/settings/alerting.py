"""The monitoring group of the settings: where alerts go and how often rules run."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode

from chainconsult.infra.settings import SETTINGS_CONFIG, split_commas


class MonitoringSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    alert_webhook_urls: Annotated[list[AnyHttpUrl], NoDecode] = Field(
        default_factory=list, validation_alias="ALERT_WEBHOOK_URLS"
    )
    """Slack-compatible incoming webhooks that get high and critical alerts."""
    pagerduty_events_url: AnyHttpUrl = Field(
        AnyHttpUrl("https://events.pagerduty.com/v2/enqueue"),
        validation_alias="PAGERDUTY_EVENTS_URL",
    )
    """PagerDuty Events API v2 endpoint."""
    pagerduty_routing_key: SecretStr | None = Field(None, validation_alias="PAGERDUTY_ROUTING_KEY")
    """Integration key; critical alerts page only when it is set."""
    alert_evaluation_interval_s: float = Field(
        10.0, ge=0.2, le=3600, validation_alias="ALERT_EVALUATION_INTERVAL"
    )
    """Seconds between two evaluations of the alert rules in each API process."""
    health_cache_s: float = Field(1.5, ge=0, le=60, validation_alias="HEALTH_CACHE_SECONDS")
    """Seconds a health probe result is reused, so health stays cheap under load (0: probe on
    every request)."""

    @field_validator("alert_webhook_urls", mode="before")
    @classmethod
    def _urls(cls, value: Any) -> Any:
        return split_commas(value)
