"""Job, email and retention settings: a bad value is one line naming the variable."""

from __future__ import annotations

import pytest

from chainconsult.config import ConfigError, SmtpTls, load_settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"JOB_HEARTBEAT_SECONDS": "10", "JOB_STALLED_AFTER_SECONDS": "5"},
            "JOB_STALLED_AFTER_SECONDS must be larger than JOB_HEARTBEAT_SECONDS",
        ),
        (
            {"JOB_RECOVERY_INTERVAL_SECONDS": "7"},
            "JOB_RECOVERY_INTERVAL_SECONDS: must divide 60 (1-30 seconds) or be whole minutes",
        ),
        ({"SMTP_TLS": "ssl"}, "SMTP_TLS: Input should be 'auto', 'tls', 'starttls' or 'none'"),
        ({"SESSION_RETENTION_DAYS": "-1"}, "SESSION_RETENTION_DAYS: Input should be greater"),
    ],
)
def test_a_bad_job_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert str(caught.value).startswith(message)


def test_job_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAX_CONCURRENT_JOBS", "SMTP_TLS", "JOB_RECOVERY_INTERVAL_SECONDS"):
        monkeypatch.delenv(name, raising=False)

    settings = load_settings()

    assert settings.jobs.max_concurrent_jobs == 10
    assert settings.jobs.recovery_interval_seconds == 60
    assert settings.jobs.shutdown_grace_seconds == 30
    assert settings.email.smtp_tls is SmtpTls.auto
    assert settings.retention.session_days == 7
