"""/livez in `serve`'s embedded mode: it fails once the embedded PostgreSQL has stayed down
longer than EMBEDDED_POSTGRES_MAX_DOWN_SECONDS while `serve`'s supervisor kept restarting it
(the state file is what that supervisor writes; tests/test_serve_embedded.py runs the real one)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chainconsult.app import create_app
from chainconsult.infra.embedded.state import SupervisorState, write_state
from tests.conftest import make_settings
from tests.helpers import serving


@pytest.mark.parametrize(
    ("down_for_s", "status"), [(None, 200), (5.0, 200), (30.0, 200), (120.0, 503)]
)
async def test_livez_fails_only_once_the_embedded_postgres_stayed_down_past_its_limit(
    database_url: str, tmp_path: Path, down_for_s: float | None, status: int
) -> None:
    state_file = tmp_path / "embedded-postgres.json"
    down_since = None if down_for_s is None else time.monotonic() - down_for_s
    write_state(state_file, SupervisorState(down_since=down_since, restarts=0))
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        CHAINCONSULT_EMBEDDED_STATE=str(state_file),
        EMBEDDED_POSTGRES_MAX_DOWN_SECONDS="60",
    )

    async with serving(create_app(settings)) as http:
        response = await http.get("/livez")

    assert response.status_code == status
    assert response.headers["content-type"] == "application/health+json"
    if status == 503:
        assert response.json() == {
            "status": "fail",
            "notes": ["embedded database down, restarts failing"],
        }
