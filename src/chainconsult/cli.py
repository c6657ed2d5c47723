"""The `chainconsult` command (also `python -m chainconsult`): the small commands here, the
larger ones in commands/ (serve, worker, jobs, backup, config-reference)."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from chainconsult import __version__
from chainconsult.commands.backup import backup_cli, restore
from chainconsult.commands.config_reference import config_reference
from chainconsult.commands.devchain import devchain
from chainconsult.commands.environment import (
    database,
    fail,
    migrate_database,
    settings_from_environment,
    write_generated,
)
from chainconsult.commands.jobs import jobs_cli
from chainconsult.commands.serve import serve
from chainconsult.commands.worker import worker
from chainconsult.config import Settings

if TYPE_CHECKING:
    from chainconsult.infra.db.stats import DatabaseStats

# Plain click help, not rich: rich markup ate bracketed text ("[default: ...]") and kept the
# line breaks of docstrings in command lists. Each command's docstring opens with one short
# sentence, which click lists whole; tests/test_cli_help.py holds every help text to that.
cli = typer.Typer(
    name="chainconsult",
    help="Blockchain consultant marketplace: API server, job worker and operator tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"chainconsult {__version__}")
        raise typer.Exit()


@cli.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    pass


# Registered in the order `chainconsult --help` lists them.
cli.command()(serve)


@cli.command()
def migrate() -> None:
    """Apply every migration (app schema and job schema)."""
    with database(settings_from_environment()) as settings:
        migrate_database(settings)


@cli.command("create-admin")
def create_admin(
    email: Annotated[
        str, typer.Argument(metavar="EMAIL", help="Email address of the admin account.")
    ],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an admin account, or promote an existing one.

    The password comes from a prompt or from standard input; it needs at least 12
    characters. Promoting an existing account keeps its password when none is given."""
    import asyncio

    from chainconsult.accounts.schemas import normalize_email

    try:
        email = normalize_email(email)
    except ValueError as exc:
        raise fail(f"EMAIL: {exc}") from None
    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password (empty keeps an existing account's): ") or None
        if password is not None and getpass.getpass("Repeat: ") != password:
            raise fail("the passwords differ")
    if password is not None and len(password) < 12:
        raise fail("the password needs at least 12 characters")
    with database(settings_from_environment()) as settings:
        created = asyncio.run(_ensure_admin(settings, email, password))
    typer.echo(f"{'created' if created else 'promoted'} admin {email}")


async def _ensure_admin(settings: Settings, email: str, password: str | None) -> bool:
    from chainconsult.accounts.service import AccountService
    from chainconsult.infra.cache import attach_cache, build_cache
    from chainconsult.infra.db.engine import build_engine, build_sessionmaker
    from chainconsult.infra.db.session import transaction
    from chainconsult.infra.resources import shared_redis

    engine = build_engine(settings.database, application_name="chainconsult-cli")
    # With the cache attached, running servers drop the account's cached role at once.
    redis = shared_redis(settings.redis)
    cache = build_cache(settings, redis, engine)
    sessionmaker = build_sessionmaker(engine)
    attach_cache(sessionmaker, cache)
    try:
        async with transaction(sessionmaker) as session:
            try:
                _, created = await AccountService(session).ensure_admin(
                    email=email, password=password
                )
            except ValueError as exc:
                raise fail(f"{exc} (use --password-stdin or a terminal)") from None
    finally:
        await cache.close()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
    return created


@cli.command("demo-data")
def demo_data() -> None:
    """Load the demo marketplace data set.

    200 experts, 100 clients and 500 projects with proposals and reviews. A second run adds
    nothing. It prints the demo accounts' password."""
    from chainconsult.admin.demo_data import DemoDataError, load_from_cli

    settings = settings_from_environment()
    embedded = settings.database.is_embedded
    with database(settings) as ready:
        if embedded:
            migrate_database(ready)
        try:
            load_from_cli(ready, echo=typer.echo)
        except DemoDataError as exc:
            raise fail(str(exc)) from None


cli.command()(worker)
cli.add_typer(jobs_cli, name="jobs")
cli.add_typer(backup_cli, name="backup")
cli.command("restore")(restore)
cli.command("config-reference")(config_reference)
cli.command("devchain")(devchain)


@cli.command("api-guide")
def api_guide(
    output: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            show_default="standard output",
            help="Write the guide to this file.",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; exit with status 2 when the --output file differs from the "
            "generated guide.",
        ),
    ] = False,
) -> None:
    """Write the API v1 to v2 migration guide.

    It is generated from the declared version changes; the repository keeps it in
    docs/api-versions.md."""
    from chainconsult.api_versions import migration_guide

    write_generated(migration_guide(), output, check=check, remake="make api-guide")


@cli.command("db-stats")
def db_stats(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of text tables.")
    ] = False,
    limit: Annotated[
        int,
        typer.Option(
            min=1, max=100, metavar="N", help="How many of the slowest statements to list."
        ),
    ] = 10,
) -> None:
    """Show table sizes, index use and the slowest queries.

    Also maintenance hints; the slowest statements come from pg_stat_statements, when the
    server has it."""
    import asyncio

    import orjson

    from chainconsult.infra.db.stats import render_text

    with database(settings_from_environment()) as settings:
        stats = asyncio.run(_collect_stats(settings, limit))
    if json_output:
        typer.echo(orjson.dumps(stats.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(render_text(stats))


async def _collect_stats(settings: Settings, limit: int) -> DatabaseStats:
    from chainconsult.infra.db.engine import build_engine
    from chainconsult.infra.db.stats import collect_database_stats

    engine = build_engine(settings.database, application_name="chainconsult-cli")
    try:
        return await collect_database_stats(engine, limit=limit)
    finally:
        await engine.dispose()


def main() -> None:
    cli()
