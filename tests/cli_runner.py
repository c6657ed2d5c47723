"""`chainconsult ...` run inside the test's process (click's CliRunner), for tests of what a
command does rather than of the process boundary: a new interpreter costs each call a second
or more of imports. Signals, kills and `serve` keep their real processes (tests/test_cli.py,
tests/test_process.py)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from chainconsult.cli import cli


@dataclass(frozen=True)
class CliResult:
    """What subprocess.run would have given: exit status, standard output and error."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str], cwd: Path, stdin: str | None = None) -> CliResult:
    """Run ``chainconsult *args`` with ``env`` over the test's environment, in ``cwd``."""
    with contextlib.chdir(cwd):
        result = CliRunner().invoke(cli, list(args), env=env, input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)
