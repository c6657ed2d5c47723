"""schemathesis against a real server's /api/v2/openapi.json: generated requests (valid and
invalid, as anonymous caller and as an admin) must never get a 5xx, and every documented
response must match its schema. Bounded: a fixed number of examples per operation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.edge_support import ServerProcess, server_env
from tests.helpers import PASSWORD, promote_to_admin

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 30


def test_generated_requests_get_no_5xx_and_match_the_schema(
    database_url: str, tmp_path: Path
) -> None:
    env = server_env(
        database_url,
        tmp_path,
        # Generous limits, so the run exercises the handlers rather than the 429 path.
        RATE_LIMIT_ANONYMOUS="100000/minute",
        RATE_LIMIT_FREE="100000/minute",
        RATE_LIMIT_ENTERPRISE="100000/minute",
        RATE_LIMIT_AUTH="100000/minute",
        LOGIN_THROTTLE_IP_FREE_FAILURES=9_999,
        LOGIN_THROTTLE_IP_LOCKOUT_FAILURES=10_000,
    )
    server = ServerProcess(env, tmp_path / "server.log")
    server.start()
    try:
        created = httpx.post(
            f"{server.url}/api/v2/auth/register",
            json={"email": "fuzz-admin@example.com", "password": PASSWORD, "display_name": "F"},
        )
        assert created.status_code == 201, created.text
        promote_to_admin(database_url, created.json()["id"])
        token = httpx.post(
            f"{server.url}/api/v2/auth/login",
            json={"email": "fuzz-admin@example.com", "password": PASSWORD},
        ).json()["access_token"]
        command = [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{server.url}/api/v2/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "--header",
            f"Authorization: Bearer {token}",
            # Logging out would revoke the token the rest of the run uses.
            "--exclude-path",
            "/api/v2/auth/logout",
            "--suppress-health-check",
            "all",
            "--request-timeout",
            "10",
        ]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=540,
            cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"},
        )
    finally:
        server.stop()

    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    tested = re.search(r"Tested: (\d+)", report)
    generated = re.search(r"(\d+) generated", report)
    assert tested is not None, report[-3000:]
    assert generated is not None, report[-3000:]
    assert int(tested.group(1)) >= 8
    assert int(generated.group(1)) >= 50
