"""Settings, read from the environment and validated once at start-up.

Every variable of the external contract (DESIGN.md) lives here, grouped by concern. Each group
is its own ``BaseSettings`` so that ``settings.database.max_connections`` reads as what it is,
while the environment keeps the flat names the specification uses.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_COMMON = SettingsConfigDict(
    populate_by_name=True, extra="ignore", env_ignore_empty=True, validate_default=True
)


class ConfigError(Exception):
    """A setting has a bad value; the message is one line naming the variable."""


class Environment(StrEnum):
    development = "development"
    production = "production"
    test = "test"


class EmailService(StrEnum):
    smtp = "smtp"
    console = "console"
    disabled = "disabled"


class SmtpTls(StrEnum):
    auto = "auto"
    tls = "tls"
    starttls = "starttls"
    none = "none"


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _parse_networks(value: Any) -> list[IPNetwork]:
    networks: list[IPNetwork] = []
    for item in _split_commas(value) or []:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            networks.append(item)
            continue
        try:
            networks.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an IP address or CIDR block") from exc
    return networks


NetworkList = Annotated[list[IPNetwork], NoDecode]
StringList = Annotated[list[str], NoDecode]


class AppSettings(BaseSettings):
    model_config = _COMMON

    environment: Environment = Field(Environment.development, validation_alias="CHAINCONSULT_ENV")
    """development, production or test; production turns on Secure cookies, HSTS and
    requires SECRET_KEY."""
    data_dir: Path = Field(Path("var"), validation_alias="CHAINCONSULT_DATA_DIR")
    """Where the embedded PostgreSQL, the generated secret key and run-time files live."""
    secret_key: SecretStr | None = Field(None, validation_alias="SECRET_KEY")
    """Key for signing CSRF tokens and other secrets; at least 32 characters."""
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    """Minimum level of the JSON log lines written to standard output: DEBUG, INFO, WARNING,
    ERROR or CRITICAL."""
    log_to_database: bool = Field(False, validation_alias="LOG_TO_DATABASE")
    """Store warnings, errors and alerts in the database for the status dashboard."""
    shutdown_grace_seconds: int = Field(
        30, ge=1, le=3600, validation_alias="SHUTDOWN_GRACE_SECONDS"
    )
    """Seconds `serve` lets in-flight requests finish after SIGTERM before cutting them off."""

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.production


class DatabaseSettings(BaseSettings):
    model_config = _COMMON

    url: SecretStr | None = Field(None, validation_alias="DATABASE_URL")
    """PostgreSQL URL (postgresql://user:pass@host:5432/db). Unset: the embedded server."""
    max_connections: int = Field(20, ge=1, le=1000, validation_alias="DATABASE_MAX_CONNECTIONS")
    """Connections kept in each process's pool."""
    max_overflow: int = Field(10, ge=0, le=1000, validation_alias="DATABASE_MAX_OVERFLOW")
    """Extra connections a process may open above the pool size under bursts."""
    connection_timeout_ms: int = Field(
        10_000, ge=100, le=600_000, validation_alias="DATABASE_CONNECTION_TIMEOUT"
    )
    """Milliseconds to wait for a new connection or a free pooled one."""
    pool_recycle_seconds: int = Field(1800, ge=0, validation_alias="DATABASE_POOL_RECYCLE")
    """Seconds after which a pooled connection is replaced."""
    statement_timeout_ms: int = Field(
        5_000, ge=0, le=3_600_000, validation_alias="DATABASE_STATEMENT_TIMEOUT"
    )
    """Milliseconds a single statement of a request may run (0: no limit)."""
    slow_query_ms: int = Field(200, ge=1, validation_alias="SLOW_QUERY_MS")
    """Milliseconds after which a statement is logged and counted as slow."""
    embedded_max_down_seconds: float = Field(
        60.0, gt=0, le=86_400, validation_alias="EMBEDDED_POSTGRES_MAX_DOWN_SECONDS"
    )
    """Seconds the embedded PostgreSQL may stay down while `serve` restarts it before /livez
    fails (so that whatever supervises `serve` restarts it)."""
    embedded_state_file: Path | None = Field(None, validation_alias="CHAINCONSULT_EMBEDDED_STATE")
    """Where `serve`'s supervisor of the embedded PostgreSQL reports to its server workers (set
    by `serve` in embedded mode)."""

    @field_validator("url")
    @classmethod
    def _postgres_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        scheme = value.get_secret_value().split("://", 1)[0]
        if scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
            raise ValueError("must be a postgresql:// URL")
        return value

    @property
    def is_embedded(self) -> bool:
        return self.url is None

    def sqlalchemy_url(self) -> str:
        """The URL with the psycopg 3 driver, whatever spelling the operator used."""
        if self.url is None:
            raise ConfigError("DATABASE_URL: not set and the embedded server was not started")
        raw = self.url.get_secret_value()
        _, rest = raw.split("://", 1)
        return f"postgresql+psycopg://{rest}"

    def libpq_url(self) -> str:
        """The URL as libpq (and so plain psycopg and procrastinate) understands it."""
        return self.sqlalchemy_url().replace("postgresql+psycopg://", "postgresql://", 1)


class RedisSettings(BaseSettings):
    model_config = _COMMON

    url: SecretStr | None = Field(None, validation_alias="REDIS_URL")
    """redis:// or rediss:// (TLS). Unset: every Redis use falls back to process memory."""
    upstash_rest_url: str | None = Field(None, validation_alias="UPSTASH_REDIS_REST_URL")
    """Accepted only to explain that Upstash's rediss:// URL belongs in REDIS_URL."""
    key_prefix: str = Field(
        "chainconsult", min_length=1, max_length=64, validation_alias="REDIS_KEY_PREFIX"
    )
    """Prefix of every key this deployment writes, so several can share one Redis."""
    socket_timeout_ms: int = Field(250, ge=10, le=60_000, validation_alias="REDIS_SOCKET_TIMEOUT")
    """Milliseconds a Redis call may take before the in-memory fallback is used."""

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().split("://", 1)[0] not in {
            "redis",
            "rediss",
            "unix",
        }:
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    @model_validator(mode="after")
    def _upstash_needs_redis_url(self) -> RedisSettings:
        if self.upstash_rest_url and self.url is None:
            raise ValueError(
                "UPSTASH_REDIS_REST_URL is set but the REST API is not used: put the database's "
                "rediss:// URL (from the Upstash console) in REDIS_URL"
            )
        return self


class CacheSettings(BaseSettings):
    model_config = _COMMON

    enabled: bool = Field(True, validation_alias="CACHE_ENABLED")
    """Serve hot reads from the cache; false sends every read to the database (benchmarks,
    debugging)."""
    memory_max_mb: int = Field(64, ge=1, le=65_536, validation_alias="CACHE_MEMORY_MAX_MB")
    """Megabytes of encoded values the in-process cache (L1) of each process may hold."""


class SecuritySettings(BaseSettings):
    model_config = _COMMON

    allowed_origins: StringList = Field(default_factory=list, validation_alias="ALLOWED_ORIGINS")
    """Origins (scheme://host[:port]) allowed to call the API from a browser with credentials."""
    trusted_ips: NetworkList = Field(default_factory=list, validation_alias="TRUSTED_IPS")
    """IPs/CIDRs that bypass rate limits and may read detailed health and /metrics."""
    blocked_ips: NetworkList = Field(default_factory=list, validation_alias="BLOCKED_IPS")
    """IPs/CIDRs refused with 403 before any other work."""
    trusted_proxies: NetworkList = Field(default_factory=list, validation_alias="TRUSTED_PROXIES")
    """Peers whose X-Forwarded-For header is believed."""
    session_ttl_seconds: int = Field(
        43_200, ge=60, le=30 * 86_400, validation_alias="SESSION_TTL_SECONDS"
    )
    """Seconds a login (bearer token and session cookie) lasts."""
    max_body_bytes: int = Field(1_048_576, ge=1024, validation_alias="MAX_BODY_BYTES")
    """Largest request body accepted, in bytes; larger ones get 413."""
    max_json_depth: int = Field(32, ge=2, le=512, validation_alias="MAX_JSON_DEPTH")
    """Deepest nesting of arrays and objects accepted in a JSON body; deeper ones get 400."""
    header_timeout_seconds: float = Field(
        10.0, gt=0, le=300, validation_alias="HTTP_HEADER_TIMEOUT"
    )
    """Seconds a client may take to send a request's headers before the server hangs up. The
    server (granian) has one timer for this and idle keep-alive: the shorter of the two."""
    keep_alive_timeout_seconds: int = Field(
        5, ge=1, le=300, validation_alias="HTTP_KEEP_ALIVE_TIMEOUT"
    )
    """Seconds an idle keep-alive connection stays open between requests (one timer with
    HTTP_HEADER_TIMEOUT: the shorter of the two applies to both)."""
    body_timeout_seconds: float = Field(30.0, gt=0, le=3600, validation_alias="HTTP_BODY_TIMEOUT")
    """Seconds a client may take to send a whole request body, from its first read; a slower
    one gets 408 and the connection is closed."""
    cors_max_age_seconds: int = Field(600, ge=0, le=86_400, validation_alias="CORS_MAX_AGE")
    """Seconds browsers may cache a CORS preflight answer."""

    @field_validator("trusted_ips", "blocked_ips", "trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> list[IPNetwork]:
        return _parse_networks(value)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        origins = _split_commas(value)
        for origin in origins or []:
            scheme, sep, host = str(origin).partition("://")
            if scheme not in {"http", "https"} or not sep or not host or "/" in host:
                raise ValueError(f"{origin!r} is not an origin like https://example.com")
        return origins


class RateLimitSettings(BaseSettings):
    """Limits are `limits` strings: a count per second, minute, hour, day, month or year
    (`120/minute`, `10 per 5 seconds`), several separated by `;`."""

    model_config = _COMMON

    anonymous: str = Field("120/minute", validation_alias="RATE_LIMIT_ANONYMOUS")
    """Limit per client IP for callers without a login."""
    free: str = Field("300/minute", validation_alias="RATE_LIMIT_FREE")
    """Limit per account on the free plan."""
    pro: str = Field("600/minute", validation_alias="RATE_LIMIT_PRO")
    """Limit per account on the pro plan."""
    enterprise: str = Field("3000/minute", validation_alias="RATE_LIMIT_ENTERPRISE")
    """Limit per account on the enterprise plan."""
    auth: str = Field("10/minute", validation_alias="RATE_LIMIT_AUTH")
    """Limit per client IP on login and registration."""
    write_cost: int = Field(5, ge=1, le=1000, validation_alias="RATE_LIMIT_WRITE_COST")
    """Units a POST/PUT/PATCH/DELETE takes from the caller's quota (a read takes 1)."""
    penalty_max_seconds: int = Field(
        900, ge=0, le=86_400, validation_alias="RATE_LIMIT_PENALTY_MAX"
    )
    """Seconds of the longest penalty for a caller who keeps exceeding a limit (0: no
    penalty)."""
    redis_probe_seconds: float = Field(
        2.0, gt=0, le=300, validation_alias="RATE_LIMIT_REDIS_PROBE_INTERVAL"
    )
    """Seconds between the background probes that check, while Redis is down, whether it is
    back."""

    @field_validator("anonymous", "free", "pro", "enterprise", "auth")
    @classmethod
    def _limits_syntax(cls, value: str) -> str:
        # The `limits` grammar: "<count>/<unit>" or "<count> per <n> <unit>", `;`-separated.
        import re

        item = r"\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day|month|year)s?\s*"
        if not re.fullmatch(f"{item}(;{item})*", value):
            raise ValueError(f"{value!r} is not a limit like '120/minute'")
        return value


class LoginThrottleSettings(BaseSettings):
    model_config = _COMMON

    window_seconds: int = Field(3600, ge=1, le=86_400, validation_alias="LOGIN_THROTTLE_WINDOW")
    """Seconds over which failed logins are counted (a lockout lasts until the window ends)."""
    free_failures: int = Field(5, ge=1, le=100, validation_alias="LOGIN_THROTTLE_FREE_FAILURES")
    """Failures per account before each further attempt must wait a growing delay."""
    lockout_failures: int = Field(
        20, ge=2, le=100, validation_alias="LOGIN_THROTTLE_LOCKOUT_FAILURES"
    )
    """Failures per account within the window that lock it (ASVS 2.2.1 caps this at 100)."""
    max_delay_seconds: int = Field(300, ge=1, le=3600, validation_alias="LOGIN_THROTTLE_MAX_DELAY")
    """Longest delay in seconds between attempts before the lockout."""
    ip_free_failures: int = Field(
        20, ge=1, le=10_000, validation_alias="LOGIN_THROTTLE_IP_FREE_FAILURES"
    )
    """Failures from one client IP (over all accounts) before its attempts are delayed."""
    ip_lockout_failures: int = Field(
        100, ge=2, le=100_000, validation_alias="LOGIN_THROTTLE_IP_LOCKOUT_FAILURES"
    )
    """Failures from one client IP within the window that stop its logins until it ends."""
    hash_wait_ms: int = Field(2000, ge=0, le=60_000, validation_alias="LOGIN_HASH_WAIT_MS")
    """Longest wait of a login for a password-hashing slot (ms); past it the login is shed
    with 503 and Retry-After."""

    @model_validator(mode="after")
    def _ordered(self) -> LoginThrottleSettings:
        if self.free_failures >= self.lockout_failures:
            raise ValueError(
                "LOGIN_THROTTLE_FREE_FAILURES must be below LOGIN_THROTTLE_LOCKOUT_FAILURES"
            )
        if self.ip_free_failures >= self.ip_lockout_failures:
            raise ValueError(
                "LOGIN_THROTTLE_IP_FREE_FAILURES must be below LOGIN_THROTTLE_IP_LOCKOUT_FAILURES"
            )
        return self


class PasswordHashSettings(BaseSettings):
    """argon2id cost; the defaults are RFC 9106's second recommended option."""

    model_config = _COMMON

    memory_kib: int = Field(65_536, ge=8, le=4_194_304, validation_alias="PASSWORD_HASH_MEMORY_KIB")
    """KiB of memory one password hash uses."""
    time_cost: int = Field(3, ge=1, le=100, validation_alias="PASSWORD_HASH_TIME_COST")
    """Passes over that memory per hash."""
    parallelism: int = Field(4, ge=1, le=64, validation_alias="PASSWORD_HASH_PARALLELISM")
    """Lanes (threads) of one hash; PASSWORD_HASH_MEMORY_KIB must be at least 8 per lane."""

    @model_validator(mode="after")
    def _enough_memory_per_lane(self) -> PasswordHashSettings:
        if self.memory_kib < 8 * self.parallelism:
            raise ValueError(
                "PASSWORD_HASH_MEMORY_KIB must be at least 8 x PASSWORD_HASH_PARALLELISM"
            )
        return self


class JobSettings(BaseSettings):
    model_config = _COMMON

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
    model_config = _COMMON

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


class EmailSettings(BaseSettings):
    model_config = _COMMON

    service: EmailService = Field(EmailService.console, validation_alias="EMAIL_SERVICE")
    """smtp sends, console prints, disabled drops (with a log line)."""
    smtp_host: str | None = Field(None, validation_alias="SMTP_HOST")
    """SMTP server host."""
    smtp_port: int = Field(587, ge=1, le=65535, validation_alias="SMTP_PORT")
    """587 for STARTTLS, 465 for implicit TLS, 25 or another for plain."""
    smtp_username: str | None = Field(None, validation_alias="SMTP_USERNAME")
    """Login name, when the server wants one."""
    smtp_password: SecretStr | None = Field(None, validation_alias="SMTP_PASSWORD")
    """Password, when the server wants one."""
    smtp_from: str = Field("chainconsult <no-reply@localhost>", validation_alias="SMTP_FROM")
    """From address of every message."""
    smtp_tls: SmtpTls = Field(SmtpTls.auto, validation_alias="SMTP_TLS")
    """auto: implicit TLS on 465, STARTTLS required on 587, STARTTLS when offered elsewhere;
    or force `tls`, `starttls` or `none`."""
    smtp_ca_file: Path | None = Field(None, validation_alias="SMTP_CA_FILE")
    """CA bundle to verify the SMTP server's certificate (a private relay); default: system."""
    smtp_timeout_seconds: float = Field(30.0, gt=0, le=600, validation_alias="SMTP_TIMEOUT_SECONDS")
    """Seconds to wait for the SMTP server at each step before the attempt counts as failed."""
    public_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8000"), validation_alias="PUBLIC_URL"
    )
    """Where users reach the platform; links in emails start with it. Unset, `serve` sets it to
    the address it listens on (cli.public_url_for: the host name for 0.0.0.0 or ::), and a
    separate `worker` uses the default, so set it for workers."""

    @model_validator(mode="after")
    def _smtp_needs_host(self) -> EmailSettings:
        if self.service is EmailService.smtp and not self.smtp_host:
            raise ValueError("SMTP_HOST must be set when EMAIL_SERVICE=smtp")
        return self


class MonitoringSettings(BaseSettings):
    model_config = _COMMON

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
        return _split_commas(value)


class VersioningSettings(BaseSettings):
    model_config = _COMMON

    api_v1_sunset: str = Field("Thu, 01 Jul 2027 00:00:00 GMT", validation_alias="API_V1_SUNSET")
    """HTTP-date after which API v1 may stop answering."""
    api_v1_deprecation: str = Field(
        "Thu, 01 Jan 2026 00:00:00 GMT", validation_alias="API_V1_DEPRECATION"
    )
    """HTTP-date from which API v1 is deprecated (sent as RFC 9745 `Deprecation: @<seconds>`);
    not after API_V1_SUNSET."""

    @field_validator("api_v1_sunset", "api_v1_deprecation")
    @classmethod
    def _http_date(cls, value: str) -> str:
        from email.utils import parsedate_to_datetime

        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an HTTP-date") from exc
        if parsed is None or parsed.tzinfo is None:
            raise ValueError(f"{value!r} is not an HTTP-date in GMT")
        return value

    @model_validator(mode="after")
    def _sunset_after_deprecation(self) -> VersioningSettings:
        from email.utils import parsedate_to_datetime

        # RFC 8594: a Sunset before the Deprecation would tell clients v1 died before it was
        # deprecated.
        if parsedate_to_datetime(self.api_v1_sunset) < parsedate_to_datetime(
            self.api_v1_deprecation
        ):
            raise ValueError("API_V1_SUNSET must not be earlier than API_V1_DEPRECATION")
        return self

    def sunset_at(self) -> dt.datetime:
        from email.utils import parsedate_to_datetime

        return parsedate_to_datetime(self.api_v1_sunset)

    def deprecated_at(self) -> dt.datetime:
        from email.utils import parsedate_to_datetime

        return parsedate_to_datetime(self.api_v1_deprecation)


class StorageSettings(BaseSettings):
    model_config = _COMMON

    s3_endpoint_url: AnyHttpUrl | None = Field(None, validation_alias="S3_ENDPOINT_URL")
    """Endpoint of an S3-compatible object store (MinIO, R2...); unset: AWS S3. Credentials
    come from the standard AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)."""
    s3_region: str | None = Field(None, validation_alias="S3_REGION")
    """Region of the S3 bucket; unset: the AWS default chain (AWS_DEFAULT_REGION...)."""


class BackupSettings(BaseSettings):
    model_config = _COMMON

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

    @field_validator("url")
    @classmethod
    def _store_scheme(cls, value: str | None) -> str | None:
        if value is not None and value.split("://", 1)[0] not in {"file", "s3"}:
            raise ValueError("must be a file:// or s3:// URL")
        return value

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


class Settings(BaseSettings):
    """Everything the platform reads from its environment."""

    model_config = _COMMON

    app: AppSettings = Field(default_factory=AppSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    login_throttle: LoginThrottleSettings = Field(default_factory=LoginThrottleSettings)
    password_hash: PasswordHashSettings = Field(default_factory=PasswordHashSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    versioning: VersioningSettings = Field(default_factory=VersioningSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)

    @model_validator(mode="after")
    def _production_needs_secret(self) -> Settings:
        if self.app.is_production and self.app.secret_key is None:
            raise ConfigError("SECRET_KEY: required when CHAINCONSULT_ENV=production")
        return self

    def secret_key(self) -> bytes:
        """The signing key; in development it is generated once and kept in the data dir."""
        if self.app.secret_key is not None:
            return self.app.secret_key.get_secret_value().encode()
        path = self.app.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two processes starting at once must not each write a different key.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    if not first["loc"]:
        # A check across several variables; its message names them itself.
        return message
    name = ".".join(str(part) for part in first["loc"])
    if "input" in first and first["type"] not in {"missing"} and not _is_secret(name):
        return f"{name}: {message} (got {first['input']!r})"
    return f"{name}: {message}"


def _is_secret(name: str) -> bool:
    return any(word in name for word in ("PASSWORD", "SECRET", "KEY", "URL"))


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the environment; raise ConfigError with one line on a bad value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
