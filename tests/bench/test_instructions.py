"""bench/instructions.py: the in-process request loop it counts (through the real app), and a
short count under callgrind end to end (of a tiny app: the real app's imports alone take
minutes under callgrind)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from bench import instructions
from tests.conftest import missing_service

ME = "GET /api/v2/auth/me"
TINY = "tests.bench.tiny_asgi:create_app"


def test_the_counted_loop_reaches_the_auth_dependency(postgres_server_url: str) -> None:
    """Without valgrind: the child sends the request through the whole app and reports the
    status it got (a 401 from the auth dependency, not a 429 or a 500)."""
    env = {**os.environ, "DATABASE_URL": postgres_server_url, "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    env.update(RATE_LIMIT_ANONYMOUS="100000000/minute", RATE_LIMIT_FREE="100000000/minute")
    done = subprocess.run(
        [sys.executable, "-m", "bench.instructions", "--child", "--requests", "3",
         "--request", ME, "--measure", ME],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-2000:]
    assert "status 401" in done.stderr


def test_a_request_is_refused_unless_it_is_method_and_path() -> None:
    with pytest.raises(SystemExit):
        instructions.main(["--request", "/api/v2/auth/me"])


@pytest.mark.slow
def test_short_count_under_callgrind(
    postgres_server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("valgrind") is None:
        missing_service("valgrind (apt-get install -y valgrind)")
    instructions.main(
        ["--server", postgres_server_url, "--requests", "20", "--request", ME, "--app", TINY]
    )

    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows[0] == "| request | status | this tree (instructions/request) |"
    request, status, count = (cell.strip() for cell in rows[1].strip("|").split("|"))
    assert (request, status) == (f"`{ME}`", "401")
    # The tiny app's 401 is thousands of instructions (the real app's, hundreds of thousands).
    assert 0 < float(count.removesuffix(" M")) < 0.5
