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


class QueueStats(BaseModel):
    name: str = Field(description="critical, default or low.")
    counts: dict[str, int] = Field(
        description="Jobs by status: todo, doing, succeeded, failed, cancelled, aborted."
    )
    oldest_waiting_seconds: float | None = Field(
        description="How long the longest-waiting due job has waited; null when none waits."
    )


class JobFailureOut(BaseModel):
    job_id: int
    task: str
    queue: str
    attempt: int = Field(description="1 for the job's first run.")
    will_retry: bool = Field(description="False when this failure was the job's last.")
    error: str = Field(description="Exception type, message and traceback of the attempt.")
    failed_at: dt.datetime


class JobsOverviewResponse(BaseModel):
    queues: list[QueueStats]
    recent_failures: list[JobFailureOut] = Field(description="Newest first.")
