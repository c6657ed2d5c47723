"""What every command starts from: the settings (a bad value is one line and exit status 2),
the database (the configured one, or the embedded server for as long as the command runs),
its migrations, and one committed transaction on it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from chainconsult.config import ConfigError, Settings, load_settings
from chainconsult.infra.embedded.postgres import EmbeddedDatabaseError, embedded_database
from chainconsult.infra.embedded.state import STATE_FILE_NAME
from chainconsult.infra.embedded.supervisor import supervised_embedded_database
from chainconsult.infra.security.passwords import use_parameters as use_password_hash_parameters

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def write_generated(text: str, output: Path | None, *, check: bool, remake: str) -> None:
    """Print a generated document, write it to ``output``, or (``check``) fail when the file
    there differs, naming the command that regenerates it."""
    if output is None:
        typer.echo(text, nl=False)
        return
    if check:
        if not output.exists() or output.read_text() != text:
            raise fail(f"{output} is out of date: run `{remake}`")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    typer.echo(f"wrote {output}", err=True)


def settings_from_environment() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail(str(exc)) from None
    # create-admin and demo-data hash passwords in this process.
    use_password_hash_parameters(settings.password_hash)
    return settings


@contextlib.contextmanager
def database(settings: Settings, *, supervised: bool = False) -> Iterator[Settings]:
    """Settings with a reachable DATABASE_URL: the configured one, or the embedded server's
    (started, or attached to, for as long as the block runs; ``supervised``: `serve`'s, also
    restarted whenever it dies, see infra/embedded/supervisor.py)."""
    if not settings.database.is_embedded:
        yield settings
        return
    if supervised:
        state_file = settings.app.data_dir.resolve() / STATE_FILE_NAME
        server = supervised_embedded_database(settings.app.data_dir, state_file)
        # The server workers' /livez reads what the supervisor reports there.
        os.environ["CHAINCONSULT_EMBEDDED_STATE"] = str(state_file)
    else:
        server = embedded_database(settings.app.data_dir)
    try:
        with server as url:
            # Child processes (server workers) inherit the URL through the environment.
            os.environ["DATABASE_URL"] = url
            yield load_settings()
    except EmbeddedDatabaseError as exc:
        raise fail(str(exc)) from None


def migrate_database(settings: Settings) -> None:
    from chainconsult.infra.db.migrate import migrate

    migrate(settings.database.sqlalchemy_url(), echo=lambda line: typer.echo(line, err=True))


T = TypeVar("T")


def in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one committed transaction on the configured (or embedded) database."""
    import asyncio

    from chainconsult.infra.db.engine import build_engine, build_sessionmaker
    from chainconsult.infra.db.session import transaction

    async def run(settings: Settings) -> T:
        engine = build_engine(settings.database, application_name="chainconsult-cli")
        try:
            async with transaction(build_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    with database(settings_from_environment()) as settings:
        return asyncio.run(run(settings))
