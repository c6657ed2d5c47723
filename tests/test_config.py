"""Start-up validation: one clear line naming the variable; secrets never echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chainconsult.config import ConfigError, load_settings
from tests.cli_runner import run_cli


def _run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chainconsult", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_pool_size_stops_serve_with_one_line_naming_it(tmp_path: Path) -> None:
    result = _run_cli("serve", env={"DATABASE_MAX_CONNECTIONS": "abc"}, cwd=tmp_path)

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: DATABASE_MAX_CONNECTIONS:")
    assert not (tmp_path / "var").exists(), "nothing may start before settings are valid"


def test_a_bad_secret_is_named_but_never_printed(tmp_path: Path) -> None:
    # In-process: the serve test above covers the real process's output.
    result = run_cli(
        "migrate",
        env={"DATABASE_URL": "mysql://root:hunter2-secret@db/x"},
        cwd=tmp_path,
    )

    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr
    assert "hunter2-secret" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REDIS_URL", "http://localhost:6379"),
        ("TRUSTED_IPS", "10.0.0.0/8,not-an-ip"),
        ("ALLOWED_ORIGINS", "example.com"),
        ("RATE_LIMIT_PRO", "many"),
        ("API_V1_SUNSET", "next year"),
        ("EMAIL_SERVICE", "pigeon"),
        ("SMTP_PORT", "70000"),
        ("CHAINCONSULT_ENV", "staging"),
        ("DATABASE_CONNECTION_TIMEOUT", "-5"),
        ("MAX_CONCURRENT_JOBS", "0"),
        ("STORAGE_URL", "s3://"),
        ("BACKUP_URL", "s3:///nightly"),
        ("BACKUP_URL", "ftp://backups.example.com"),
    ],
)
def test_each_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError) as error:
        load_settings()

    assert str(error.value).startswith(f"{name}:")
    assert "\n" not in str(error.value)


def test_production_requires_a_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINCONSULT_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)

    with pytest.raises(ConfigError, match=r"^SECRET_KEY:"):
        load_settings()


def test_upstash_rest_url_alone_says_where_the_redis_url_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", "https://eu1-example.upstash.io")

    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_settings()


def test_lists_and_networks_parse_from_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://a.example, https://b.example:8443")
    monkeypatch.setenv("TRUSTED_IPS", "127.0.0.1, 10.0.0.0/8, ::1")

    settings = load_settings()

    assert settings.security.allowed_origins == ["https://a.example", "https://b.example:8443"]
    assert [str(n) for n in settings.security.trusted_ips] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
    ]


def test_development_secret_is_generated_once_and_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("CHAINCONSULT_DATA_DIR", str(tmp_path))

    first = load_settings().secret_key()
    second = load_settings().secret_key()

    assert first == second
    assert len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
