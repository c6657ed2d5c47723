"""The email group of the settings: which transport, the SMTP server, the public URL of links."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from chainconsult.infra.settings import SETTINGS_CONFIG


class EmailService(StrEnum):
    smtp = "smtp"
    console = "console"
    disabled = "disabled"


class SmtpTls(StrEnum):
    auto = "auto"
    tls = "tls"
    starttls = "starttls"
    none = "none"


class EmailSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

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
    the address it listens on (commands/serve.py, public_url_for: the host name for 0.0.0.0 or
    ::), and a separate `worker` uses the default, so set it for workers."""

    @model_validator(mode="after")
    def _smtp_needs_host(self) -> EmailSettings:
        if self.service is EmailService.smtp and not self.smtp_host:
            raise ValueError("SMTP_HOST must be set when EMAIL_SERVICE=smtp")
        return self
