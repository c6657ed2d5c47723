"""One access line per request at INFO, with the request id; none below it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from chainconsult.app import create_app
from tests.conftest import make_settings
from tests.helpers import serving


async def _access_lines(
    level: str, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> list[dict[str, Any]]:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, LOG_LEVEL=level)
    app = create_app(settings)
    # create_app configures logging, which replaces the root handlers, caplog's among them.
    logging.getLogger().addHandler(caplog.handler)
    async with serving(app) as client:
        for _ in range(2):  # the second directory read is the cached-read shortcut's
            await client.get("/api/v2/experts", headers={"X-Request-ID": "req-12345678"})
        await client.get("/livez")
    return [
        record.msg
        for record in caplog.records
        if record.name == "chainconsult.access" and isinstance(record.msg, dict)
    ]


async def test_each_request_logs_one_access_line_with_its_request_id(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = await _access_lines("INFO", database_url, tmp_path, caplog)

    assert [(line["event"], line["path"], line["status"]) for line in lines] == [
        ("request", "/api/v2/experts", 200),
        ("request", "/api/v2/experts", 200),
        ("request", "/livez", 200),
    ]
    assert [line["request_id"] for line in lines[:2]] == ["req-12345678", "req-12345678"]
    assert all(line["method"] == "GET" and line["duration_ms"] >= 0 for line in lines)


async def test_no_access_line_below_the_log_level(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert await _access_lines("WARNING", database_url, tmp_path, caplog) == []
