from __future__ import annotations

import pytest

from chainconsult.config import ConfigError, load_settings


def test_sunset_before_deprecation_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_V1_DEPRECATION", "Mon, 01 Jun 2026 00:00:00 GMT")
    monkeypatch.setenv("API_V1_SUNSET", "Fri, 01 May 2026 00:00:00 GMT")

    with pytest.raises(ConfigError, match="API_V1_SUNSET must not be earlier than"):
        load_settings()


def test_deprecation_must_be_an_http_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_V1_DEPRECATION", "2026-01-01")

    with pytest.raises(ConfigError, match="API_V1_DEPRECATION"):
        load_settings()


def test_the_lifecycle_dates_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_V1_DEPRECATION", "Mon, 01 Jun 2026 00:00:00 GMT")
    monkeypatch.setenv("API_V1_SUNSET", "Tue, 01 Jun 2027 12:30:00 GMT")

    versioning = load_settings().versioning

    assert versioning.deprecated_at().isoformat() == "2026-06-01T00:00:00+00:00"
    assert versioning.sunset_at().isoformat() == "2027-06-01T12:30:00+00:00"
