"""The job worker group of the settings, and how long the nightly purge keeps rows."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings

from chainconsult.infra.settings import SETTINGS_CONFIG


class JobSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    max_concurrent_jobs: int = Field(10, ge=1, le=1000, validation_alias="MAX_CONCURRENT_JOBS")
    """Jobs one worker process runs at once."""
    in_process_worker: bool = Field(False, validation_alias="CHAINCONSULT_IN_PROCESS_WORKER")
    """Run a job worker inside the API process (set by `serve` in embedded mode)."""
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, le=3600, validation_alias="JOB_SHUTDOWN_GRACE_SECONDS"
    )
    """Seconds a stopping worker lets running jobs finish before aborting them."""
    poll_interval_seconds: float = Field(
        1.0, gt=0, le=60, validation_alias="JOB_POLL_INTERVAL_SECONDS"
    )
    """Seconds between queue polls (new jobs also wake workers at once via LISTEN/NOTIFY;
    the poll picks up retries and scheduled jobs whose time has come)."""
    heartbeat_seconds: float = Field(10.0, gt=0, le=600, validation_alias="JOB_HEARTBEAT_SECONDS")
    """Seconds between a worker's heartbeats."""
    stalled_after_seconds: float = Field(
        30.0, gt=0, le=86_400, validation_alias="JOB_STALLED_AFTER_SECONDS"
    )
    """A worker silent for this long is presumed dead and its running jobs are re-queued."""
    recovery_interval_seconds: int = Field(
        60, ge=1, le=3600, validation_alias="JOB_RECOVERY_INTERVAL_SECONDS"
    )
    """Seconds between runs of the stalled-job recovery (a divisor or multiple of 60)."""

    @model_validator(mode="after")
    def _heartbeat_before_stall(self) -> JobSettings:
        if self.stalled_after_seconds <= self.heartbeat_seconds:
            raise ValueError("JOB_STALLED_AFTER_SECONDS must be larger than JOB_HEARTBEAT_SECONDS")
        return self

    @field_validator("recovery_interval_seconds")
    @classmethod
    def _cron_friendly(cls, value: int) -> int:
        if (value < 60 and 60 % value) or (value >= 60 and value % 60):
            raise ValueError("must divide 60 (1-30 seconds) or be whole minutes")
        return value


class RetentionSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    session_days: int = Field(7, ge=0, le=3650, validation_alias="SESSION_RETENTION_DAYS")
    """Days expired or revoked logins are kept before the nightly purge deletes them."""
    notification_days: int = Field(
        90, ge=1, le=3650, validation_alias="NOTIFICATION_RETENTION_DAYS"
    )
    """Days read notifications are kept."""
    audit_days: int = Field(365, ge=1, le=36_500, validation_alias="AUDIT_RETENTION_DAYS")
    """Days audit log rows are kept."""
    job_days: int = Field(14, ge=1, le=3650, validation_alias="JOB_RETENTION_DAYS")
    """Days finished jobs (and their recorded errors and email outcomes) are kept."""
