"""`chainconsult backup [--to URL]`, `backup list`, `backup verify ID` and `chainconsult restore
ID`; the work is done by chainconsult.infra.backup. Heavy imports wait inside the commands:
cli.py imports this module on every start."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from chainconsult.config import Settings
    from chainconsult.infra.backup.catalog import Listed
    from chainconsult.infra.backup.progress import Progress

IDENTITY_HELP = (
    "The age identity file (private key) of BACKUP_ENCRYPTION_RECIPIENT, needed for an "
    "encrypted backup."
)

backup_cli = typer.Typer(no_args_is_help=False, rich_markup_mode=None)


def _echo_progress() -> Progress:
    from chainconsult.infra.backup.progress import ThrottledLines

    return ThrottledLines(lambda line: typer.echo(line, err=True))


@backup_cli.callback(invoke_without_command=True)
def backup(
    context: typer.Context,
    to: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            show_default="BACKUP_URL",
            help="Store the backup here (file:///path or s3://bucket/prefix).",
        ),
    ] = None,
) -> None:
    """Back up the database now, or list and verify backups.

    The dump is consistent (one snapshot), made with the PostgreSQL tools of the server's major
    version, encrypted when BACKUP_ENCRYPTION_RECIPIENT is set, read back after storing, and
    described by a manifest (time, size, SHA-256, schema revision, rows per table)."""
    from chainconsult.commands.environment import database, fail, settings_from_environment
    from chainconsult.infra.backup.errors import BackupError
    from chainconsult.infra.backup.progress import human_size
    from chainconsult.infra.backup.service import take_backup

    if context.invoked_subcommand is not None:
        if to is not None:
            raise fail(
                f"--to goes with `backup` alone, not with `backup {context.invoked_subcommand}`"
            )
        return
    with database(settings_from_environment()) as settings:
        try:
            manifest = take_backup(settings, to=to, progress=_echo_progress())
        except BackupError as exc:
            raise fail(str(exc)) from None
    typer.echo(
        f"backup {manifest.id}: {len(manifest.row_counts)} tables, {manifest.rows} rows, "
        f"{human_size(manifest.size)}{', encrypted' if manifest.encrypted_to else ''}, "
        f"schema {manifest.schema_revision}"
    )


@backup_cli.command("list")
def backup_list() -> None:
    """List the backups in BACKUP_URL, oldest first.

    Dumps show their time, size, rows and state: verified (stored copy read back), and the
    outcome of the last `backup verify`. Base backups for point-in-time recovery are listed
    with the time of their newest file."""
    from chainconsult.commands.environment import fail, settings_from_environment
    from chainconsult.infra.backup.catalog import backup_store, list_backups
    from chainconsult.infra.backup.errors import BackupError

    settings = settings_from_environment()
    try:
        store = backup_store(settings)
        found = list_backups(store)
    except BackupError as exc:
        raise fail(str(exc)) from None
    if not found:
        typer.echo(f"No backup in {store.url}.")
        return
    typer.echo(f"{'ID':<22}  {'KIND':<4}  {'TAKEN (UTC)':<19}  {'SIZE':>10}  {'ROWS':>9}  STATE")
    for item in found:
        typer.echo(_row(item))


def _row(item: Listed) -> str:
    from chainconsult.infra.backup.progress import human_size

    manifest = item.manifest
    size = human_size(manifest.size if manifest is not None else item.size)
    if manifest is None:
        when = item.modified
        rows = "-"
        state = "base backup" if item.kind == "base" else "incomplete (no manifest)"
    else:
        when = manifest.created_at
        rows = str(manifest.rows)
        state = "verified"
        if manifest.drill is not None:
            outcome = "passed" if manifest.drill.ok else "FAILED"
            state += f", drill {outcome} {manifest.drill.at.astimezone(dt.UTC):%Y-%m-%d %H:%M}"
        if manifest.encrypted_to:
            state += ", encrypted"
    taken = f"{when.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}"
    return f"{item.id:<22}  {item.kind:<4}  {taken:<19}  {size:>10}  {rows:>9}  {state}"


@backup_cli.command("verify")
def backup_verify(
    backup_id: Annotated[str, typer.Argument(metavar="ID", help="Id of a backup (`backup list`).")],
    identity: Annotated[Path | None, typer.Option(metavar="FILE", help=IDENTITY_HELP)] = None,
) -> None:
    """Check a backup by restoring it into a scratch database.

    The scratch database is created on the configured server and dropped afterwards; its row
    counts and schema revision must equal the manifest's. The outcome is recorded in the
    manifest, and a failed drill keeps the backup from counting as verified. Exits with
    status 1 when the drill fails."""
    from chainconsult.commands.environment import database, fail, settings_from_environment
    from chainconsult.infra.backup.errors import BackupError
    from chainconsult.infra.backup.service import verify_backup

    with database(settings_from_environment()) as settings:
        try:
            checked = verify_backup(
                settings, backup_id, identity=identity, progress=_echo_progress()
            )
        except BackupError as exc:
            raise fail(str(exc)) from None
    drill = checked.drill
    assert drill is not None
    if not drill.ok:
        typer.echo(f"backup {backup_id}: drill FAILED", err=True)
        for problem in drill.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(code=1)
    typer.echo(
        f"backup {backup_id}: drill passed in {drill.seconds:.1f} s: "
        f"{len(checked.row_counts)} tables and {checked.rows} rows as recorded, "
        f"schema {checked.schema_revision}"
    )


def restore(
    backup_id: Annotated[
        str, typer.Argument(metavar="ID", help="Id of a backup or base backup (`backup list`).")
    ],
    to: Annotated[
        str | None,
        typer.Option(
            metavar="DATABASE_URL",
            show_default="DATABASE_URL",
            help="Restore into this database instead of the configured one.",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            metavar="TIMESTAMP",
            help="Recover the database as it was at this time (ISO 8601, UTC unless it says "
            "otherwise), from a base backup and the WAL archive.",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace everything in a target that is not empty.")
    ] = False,
    identity: Annotated[Path | None, typer.Option(metavar="FILE", help=IDENTITY_HELP)] = None,
) -> None:
    """Restore a backup, or the database as of a past time.

    The restore runs in one transaction: if it fails, the target is left as it was. A
    target that holds tables is refused unless --force is given. Stop the API servers and
    workers first."""
    from chainconsult.commands.environment import database, settings_from_environment

    moment = _parse_until(until) if until is not None else None
    settings = settings_from_environment()
    if to is not None:
        _restore(settings, backup_id, _libpq(to), moment, yes=yes, force=force, identity=identity)
        return
    with database(settings) as ready:
        target = ready.database.libpq_url()
        _restore(ready, backup_id, target, moment, yes=yes, force=force, identity=identity)


def _restore(
    settings: Settings,
    backup_id: str,
    target_url: str,
    until: dt.datetime | None,
    *,
    yes: bool,
    force: bool,
    identity: Path | None,
) -> None:
    from chainconsult.commands.environment import fail
    from chainconsult.infra.backup.errors import BackupError
    from chainconsult.infra.backup.service import plan_restore, restore_backup

    try:
        plan = plan_restore(settings, backup_id, target_url)
    except BackupError as exc:
        raise fail(str(exc)) from None
    moment = f" as of {until:%Y-%m-%d %H:%M:%S %Z}" if until is not None else ""
    typer.echo(f"restore {plan.source_text}{moment} into the {plan.target_text}", err=True)
    try:
        plan.check(force=force)
    except BackupError as exc:
        raise fail(str(exc)) from None
    if plan.target.tables:
        typer.echo("everything in it will be replaced", err=True)
    if plan.target.other_sessions:
        typer.echo(
            f"warning: {plan.target.other_sessions} other sessions are connected to it; stop "
            "the API servers and workers first",
            err=True,
        )
    if not yes:
        if not sys.stdin.isatty():
            raise fail("no terminal to confirm on: pass --yes to restore")
        if not typer.confirm("Restore?", default=False, err=True):
            raise typer.Exit(code=1)
    try:
        found = restore_backup(
            settings,
            plan,
            until=until,
            force=force,
            identity=identity,
            progress=_echo_progress(),
        )
    except BackupError as exc:
        raise fail(str(exc)) from None
    typer.echo(
        f"restored {len(found.row_counts)} tables, {sum(found.row_counts.values())} rows, "
        f"schema {found.schema_revision}"
    )


def _parse_until(text: str) -> dt.datetime:
    from chainconsult.commands.environment import fail

    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"--until: {text!r} is not an ISO 8601 time like 2026-06-14T03:15:00Z") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _libpq(url: str) -> str:
    from chainconsult.commands.environment import fail

    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise fail("--to: must be a postgresql:// URL")
    return f"postgresql://{rest}"
