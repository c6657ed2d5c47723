"""The object store and backup groups of the settings."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, field_validator
from pydantic_settings import BaseSettings

from chainconsult.infra.settings import SETTINGS_CONFIG


def store_url(value: str | None) -> str | None:
    """STORAGE_URL and BACKUP_URL: a file:// URL, or s3:// with a bucket."""
    if value is not None and value.split("://", 1)[0] not in {"file", "s3"}:
        raise ValueError("must be a file:// or s3:// URL")
    if value is not None and value.startswith("s3://") and not value[5:].split("/")[0]:
        raise ValueError("an s3:// URL needs a bucket (s3://bucket/prefix)")
    return value


class StorageSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    s3_endpoint_url: AnyHttpUrl | None = Field(None, validation_alias="S3_ENDPOINT_URL")
    """Endpoint of an S3-compatible object store (MinIO, R2...); unset: AWS S3. Credentials
    come from the standard AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)."""
    s3_region: str | None = Field(None, validation_alias="S3_REGION")
    """Region of the S3 bucket; unset: the AWS default chain (AWS_DEFAULT_REGION...)."""
    url: str | None = Field(None, validation_alias="STORAGE_URL")
    """Where uploaded files are kept: file:///path or s3://bucket/prefix. Unset:
    file://<data dir>/files."""
    max_upload_bytes: int = Field(
        26_214_400, ge=1, le=5 * 1024**3, validation_alias="MAX_UPLOAD_BYTES"
    )
    """Largest file accepted by an upload, in bytes; larger ones get 413 and nothing is kept."""
    presigned_url_seconds: int = Field(
        60, ge=1, le=604_800, validation_alias="STORAGE_PRESIGNED_URL_SECONDS"
    )
    """Seconds an S3 download link stays valid (a download answers 302 to a fresh one)."""

    _store_url = field_validator("url")(store_url)


class BackupSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    url: str | None = Field(None, validation_alias="BACKUP_URL")
    """Where backups are kept: file:///path or s3://bucket/prefix. Unset:
    file://<data dir>/backups."""
    schedule: str = Field("37 2 * * *", validation_alias="BACKUP_SCHEDULE")
    """Cron line of the scheduled backup, run by the job workers (default daily at 02:37)."""
    retention: str = Field("7d,4w,6m", validation_alias="BACKUP_RETENTION")
    """Backups the scheduled run keeps: the newest of each of the last N hours (h), days (d),
    weeks (w), months (m) and years (y) that have one; the newest backup is always kept."""
    max_age_hours: float = Field(26.0, gt=0, le=8760, validation_alias="BACKUP_MAX_AGE_HOURS")
    """Hours after which a newest verified backup this old raises the backup_stale alert."""
    encryption_recipient: str | None = Field(None, validation_alias="BACKUP_ENCRYPTION_RECIPIENT")
    """age public key (age1...) or SSH public key every backup is encrypted to; unset: plain."""

    _store_url = field_validator("url")(store_url)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron line like '37 2 * * *'")
        return value

    @field_validator("retention")
    @classmethod
    def _retention_rule(cls, value: str) -> str:
        from chainconsult.infra.backup.retention import RetentionRule

        RetentionRule.parse(value)
        return value

    @field_validator("encryption_recipient")
    @classmethod
    def _age_recipient(cls, value: str | None) -> str | None:
        from chainconsult.infra.backup.encryption import parse_recipient

        if value is not None:
            parse_recipient(value)
        return value
