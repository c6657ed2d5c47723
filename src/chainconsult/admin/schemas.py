from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditEntryResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    occurred_at: dt.datetime
    actor_id: uuid.UUID | None = Field(description="The account that acted; null if anonymous.")
    action: str = Field(description="What happened, e.g. `auth.login_failed`, `plan.changed`.")
    resource_type: str
    resource_id: str | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]


class AuditFilters(BaseModel):
    actor_id: uuid.UUID | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
