"""One access line per request at INFO, with the request id; none below it. Read from
standard output, where the lines go (in batches, written by the end of the lifespan)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chainconsult.app import create_app
from tests.conftest import make_settings
from tests.helpers import serving


async def _access_lines(
    level: str, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> list[dict[str, Any]]:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, LOG_LEVEL=level)
    app = create_app(settings)
    async with serving(app) as client:
        for _ in range(2):  # the second directory read is the cached-read shortcut's
            await client.get("/api/v2/experts", headers={"X-Request-ID": "req-12345678"})
        await client.get("/livez")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [line for line in lines if line["logger"] == "chainconsult.access"]


async def test_each_request_logs_one_access_line_with_its_request_id(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = await _access_lines("INFO", database_url, tmp_path, capsys)

    assert [(line["event"], line["path"], line["status"]) for line in lines] == [
        ("request", "/api/v2/experts", 200),
        ("request", "/api/v2/experts", 200),
        ("request", "/livez", 200),
    ]
    assert [line["request_id"] for line in lines[:2]] == ["req-12345678", "req-12345678"]
    assert all(line["method"] == "GET" and line["duration_ms"] >= 0 for line in lines)
    # The documented shape: these fields, in this order (docs/monitoring.md, "Logs").
    assert [list(line) for line in lines] == [
        [
            "method",
            "path",
            "status",
            "duration_ms",
            "event",
            "request_id",
            "level",
            "logger",
            "timestamp",
        ]
    ] * 3
    assert all(line["level"] == "info" and line["timestamp"].endswith("Z") for line in lines)


async def test_no_access_line_below_the_log_level(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _access_lines("WARNING", database_url, tmp_path, capsys) == []
