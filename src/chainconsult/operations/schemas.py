from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chainconsult.infra.pagination import Page


class AlertStatusFilter(StrEnum):
    firing = "firing"
    resolved = "resolved"
    all = "all"


class AlertResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    fingerprint: str = Field(description="Rule identity; one firing alert per fingerprint.")
    rule: str = Field(description="Name of the rule that raised it, e.g. database_down.")
    severity: str = Field(description="critical, high, medium or low.")
    status: str = Field(description="firing or resolved.")
    summary: str
    details: dict[str, Any]
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    resolved_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: uuid.UUID | None
    notified_channels: list[str] = Field(
        description="Where the alert was sent (pagerduty, webhook); resolutions go there too."
    )


class AlertList(Page[AlertResponse]):
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
