"""schemathesis against a real server's two OpenAPI documents, /api/v2/openapi.json and
/api/v1/openapi.json: generated requests (valid and invalid, as an admin) must never get a 5xx,
an undocumented status, content type or header, a response off its schema, or an invalid
request accepted. Bounded: about 2,000 cases for v2 (mostly the coverage phase's edge values)
and 600 for v1, two minutes in all.

The long run (a few thousand cases per document, every check, the stateful phase too) is the
same command against a served app, with the settings in tests/schemathesis.toml:

    schemathesis --config-file tests/schemathesis.toml run URL/api/v2/openapi.json \\
        --checks all --phases examples,coverage,fuzzing,stateful --max-examples 100 \\
        --workers 1 --header "Authorization: Bearer TOKEN" \\
        --exclude-path /api/v2/auth/logout --suppress-health-check all
    (and /api/v1/openapi.json, with --max-examples 300: it has six operations)
"""

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

SETTINGS = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = {"/api/v2/openapi.json": 8, "/api/v1/openapi.json": 40}
"""Per operation, for the fuzzing phase: v2 has about 40 operations, v1 six."""
CHECKS = "all"
# positive_data_acceptance (a schema-valid request must be accepted) runs in the long run only:
# new rules that no schema can state (tests/schemathesis.toml lists today's) would otherwise
# fail the suite on a random draw.
EXCLUDED_CHECKS = "positive_data_acceptance"


def _schemathesis(
    document: str, server: ServerProcess, token: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(SETTINGS),
        "run",
        f"{server.url}{document}",
        "--checks",
        CHECKS,
        "--exclude-checks",
        EXCLUDED_CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES[document]),
        # One worker: hypothesis' lambda descriptions race in ast.parse on CPython 3.11.
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {token}",
        # Logging out would revoke the token the rest of the run uses.
        "--exclude-path",
        "/api/v2/auth/logout",
        # An event stream never ends: tests/conversations/test_live_events.py covers it.
        "--exclude-path",
        "/api/v2/events",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "10",
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=540,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"},
    )


# One test per document, each with its own server: two workers share the two runs.
@pytest.mark.parametrize("document", list(MAX_EXAMPLES))
def test_generated_requests_get_no_5xx_and_match_the_document(
    document: str, database_url: str, tmp_path: Path
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
        # Escrow configured, so its routes answer by their rules rather than 503; no route
        # contacts the chain (only the workers' jobs do), so the endpoint need not exist.
        ESCROW_RPC_URL="http://127.0.0.1:9",
        ESCROW_CONTRACT="0x" + "11" * 20,
        ESCROW_TOKENS="USDC:0x" + "22" * 20 + ":6",
        ESCROW_ARBITER_KEY_FILE=str(tmp_path / "arbiter.key"),
    )
    with ServerProcess(env, tmp_path / "server.log") as server:
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
        result = _schemathesis(document, server, token, tmp_path)

    report = result.stdout + result.stderr
    assert result.returncode == 0, f"{document}:\n{report[-6000:]}"
    tested = re.search(r"Tested: (\d+)", report)
    generated = re.search(r"(\d+) generated", report)
    assert tested is not None, report[-3000:]
    assert generated is not None, report[-3000:]
    assert int(tested.group(1)) >= (30 if "v2" in document else 6), report[-3000:]
    assert int(generated.group(1)) >= 200, report[-3000:]
