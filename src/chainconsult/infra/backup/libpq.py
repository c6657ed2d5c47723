"""Running the PostgreSQL programs: connection strings without the password (a command line
shows in `ps` to every user of the machine; the password goes in PGPASSWORD), their verbose
output turned into progress, and a failure reported with the program's own error lines."""

from __future__ import annotations

import collections
import os
import re
import subprocess
from collections.abc import Callable, Sequence
from typing import IO

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from chainconsult.infra.backup.errors import BackupError
from chainconsult.infra.backup.progress import Progress, Tick

_TABLE = re.compile(r'(?:dumping contents of|processing data for) table "([^"]+)"')


def program_args(url: str) -> tuple[str, dict[str, str]]:
    """A conninfo without the password, and the environment that carries it."""
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def database_name(url: str) -> str:
    return str(conninfo_to_dict(url).get("dbname") or "")


def describe(url: str) -> str:
    """The database of ``url`` for messages: name and host, never the password."""
    params = conninfo_to_dict(url)
    host = params.get("host") or "localhost"
    where = "a local socket" if str(host).startswith("/") else f"{host}:{params.get('port', 5432)}"
    return f"database {params.get('dbname', '?')!r} on {where}"


def table_ticks(step: str, tables: int, progress: Progress) -> Callable[[str], None]:
    """A reader of pg_dump's or pg_restore's --verbose lines that ticks once per table."""
    seen = 0

    def read(line: str) -> None:
        nonlocal seen
        match = _TABLE.search(line)
        if match is not None:
            seen += 1
            progress(Tick(step, min(seen, tables), tables, "tables", match.group(1)))

    return read


def run(
    args: Sequence[str],
    *,
    env: dict[str, str],
    on_line: Callable[[str], None] | None = None,
    stdin: IO[bytes] | int | None = None,
    stdout: IO[bytes] | int | None = subprocess.DEVNULL,
    what: str,
) -> None:
    """Run a PostgreSQL program to its end, feeding each stderr line to ``on_line``."""
    with subprocess.Popen(  # noqa: S603 - our own argument list, no shell
        list(args), env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE
    ) as process:
        errors = collect_stderr(process, on_line)
    if process.returncode != 0:
        raise BackupError(f"{what} failed (exit {process.returncode}): {errors.summary()}")


class StderrTail:
    def __init__(self) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=40)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def summary(self) -> str:
        """The program's error lines, else its last lines."""
        errors = [line for line in self.lines if "error" in line.lower() or "fatal" in line.lower()]
        chosen = errors[-3:] or list(self.lines)[-3:]
        return " | ".join(chosen) or "no message"


def collect_stderr(
    process: subprocess.Popen[bytes], on_line: Callable[[str], None] | None
) -> StderrTail:
    tail = StderrTail()
    assert process.stderr is not None
    for raw in process.stderr:
        line = raw.decode(errors="replace").rstrip()
        tail.add(line)
        if on_line is not None:
            on_line(line)
    process.wait()
    return tail
