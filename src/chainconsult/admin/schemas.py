from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


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
