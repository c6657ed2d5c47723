"""The `chainconsult` command (also `python -m chainconsult`)."""

from __future__ import annotations

import contextlib
import getpass
import ipaddress
import logging
import math
import os
import resource
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from chainconsult import __version__
from chainconsult.commands.backup import backup_cli, restore
from chainconsult.commands.config_reference import config_reference
from chainconsult.commands.devchain import devchain
from chainconsult.config import ConfigError, Settings, load_settings
from chainconsult.infra.embedded.lock import ServeLock
from chainconsult.infra.embedded.postgres import EmbeddedDatabaseError, embedded_database
from chainconsult.infra.embedded.state import STATE_FILE_NAME
from chainconsult.infra.embedded.supervisor import supervised_embedded_database
from chainconsult.infra.listen_queue import migration_warning
from chainconsult.infra.monitoring.logging import configure_logging
from chainconsult.infra.monitoring.multiproc import (
    prepare_multiprocess_dir,
    remove_multiprocess_dir,
)
from chainconsult.infra.parent_death import forked_children_stop_with_this_process
from chainconsult.infra.security.passwords import use_parameters as use_password_hash_parameters

if TYPE_CHECKING:
    from granian.server.common import AbstractServer
    from sqlalchemy.ext.asyncio import AsyncSession

    from chainconsult.infra.db.stats import DatabaseStats

APP_FACTORY = "chainconsult.app:create_app"
"""What `serve` runs in each worker."""

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


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    # create-admin and demo-data hash passwords in this process.
    use_password_hash_parameters(settings.password_hash)
    return settings


@contextlib.contextmanager
def _database(settings: Settings, *, supervised: bool = False) -> Iterator[Settings]:
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
        raise _fail(str(exc)) from None


def _migrate(settings: Settings) -> None:
    from chainconsult.infra.db.migrate import migrate

    migrate(settings.database.sqlalchemy_url(), echo=lambda line: typer.echo(line, err=True))


FILE_RESERVE = 256
"""Descriptors a server worker keeps for what is not a client connection: the database and
Redis pools, probes, logs, the metrics files, static files."""


def connections_per_worker() -> int:
    """How many client connections one server worker holds at once: as many as its open-file
    limit allows, less FILE_RESERVE. granian's own default (its listen backlog divided by the
    workers: 1,024 each for two) kept all but 2,048 of `make bench`'s 10,000 held connections
    waiting in the listen queue until they timed out; uvicorn had no such limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 65_536
    return max(FILE_RESERVE, soft - FILE_RESERVE)


def granian_server(
    target: str | None,
    *,
    host: str,
    port: int,
    workers: int,
    header_timeout_seconds: float,
    keep_alive_seconds: float,
    grace_seconds: float,
    log_level: str = "WARNING",
) -> AbstractServer[Any]:
    """How `serve` runs the app on granian; the bare route of `make bench` (bench/load/bare.py)
    uses the same, so the two compare alike. ``target`` is a factory's import path (None when
    the caller hands granian a loader of its own).

    granian rather than uvicorn, by measurement: 23 % more requests on our app at 64
    connections, 29-43 % more at 256, where uvicorn let a few requests wait a second or more
    (wrk timeouts even on a bare one-route app) and granian kept the p99 within a few times
    the median (docs/decisions/0003-serve-on-granian.md).

    - HTTP/1.1 only, no WebSockets (the API has none), uvloop, ASGI with the lifespan.
    - One timer covers a connection from its opening, or from the end of a response on a kept
      alive connection, until the next request's headers are complete (hyper's header read
      timeout): a slowloris client and an idle keep-alive connection are both closed by it,
      after the shorter of HTTP_HEADER_TIMEOUT and HTTP_KEEP_ALIVE_TIMEOUT.
    - On SIGTERM/SIGINT the listening socket closes at once, each worker stops accepting, lets
      its in-flight requests finish, runs the lifespan's shutdown (pools closed) and exits; a
      worker still busy after SHUTDOWN_GRACE_SECONDS is killed.
    - A worker that dies (crash, OOM kill) is started again; the others keep serving. When
      `serve` itself dies, even by SIGKILL, its workers get SIGTERM (infra/parent_death.py).
    - Its log lines go through our JSON logging (the root logger), at LOG_LEVEL or above
      WARNING, whichever is higher: its startup chatter is not an operator's business."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    timeout_ms = round(min(header_timeout_seconds, keep_alive_seconds) * 1000)
    level = max(logging.getLevelName(log_level.upper()), logging.WARNING)
    return Granian(
        target or "",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        http1_settings=HTTP1Settings(header_read_timeout=timeout_ms, keep_alive=True),
        # uvicorn's default, which the 10,000-connection benchmark is sized for.
        backlog=2048,
        # granian calls it backpressure: connections a worker accepts and holds at once.
        backpressure=connections_per_worker(),
        log_level=LogLevels(logging.getLevelName(level).lower()),
        # Replaces granian's own handlers: its records propagate to our root logger.
        log_dictconfig={"version": 1, "disable_existing_loggers": False, "loggers": {}},
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=max(1, math.ceil(grace_seconds)),
    )


def public_url_for(host: str, port: int) -> str:
    """Where emails link when PUBLIC_URL is unset: the address `serve` listens on. A wildcard
    address (0.0.0.0, ::) is nowhere to browse to; the machine's host name stands in for it."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}"
    if address.is_unspecified:
        return f"http://{socket.gethostname()}:{port}"
    if address.version == 6:
        return f"http://[{host}]:{port}"
    return f"http://{host}:{port}"


@cli.command()
def serve(
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address of the interface to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="TCP port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, metavar="N", help="Number of server worker processes.")
    ] = 1,
    with_worker: Annotated[
        bool, typer.Option("--with-worker", help="Also run a job worker in each API process.")
    ] = False,
) -> None:
    """Run the API server.

    Without DATABASE_URL it starts the embedded PostgreSQL under the data dir, migrates it
    and runs a job worker in-process. Links in emails start with PUBLIC_URL; unset, it is the
    address the server listens on."""
    settings = _settings()
    if "public_url" not in settings.email.model_fields_set:
        # The server workers, and the job worker inside them, read it from the environment.
        os.environ["PUBLIC_URL"] = public_url_for(host, port)
        typer.echo(f"emails link to {os.environ['PUBLIC_URL']} (PUBLIC_URL is unset)", err=True)
    embedded = settings.database.is_embedded
    lock = ServeLock(settings.app.data_dir.resolve())
    metrics_dir: Path | None = None
    if embedded:
        try:
            lock.acquire()
        except EmbeddedDatabaseError as exc:
            raise _fail(str(exc)) from None
    try:
        with _database(settings, supervised=True) as ready:
            if embedded:
                _migrate(ready)
            if embedded or with_worker:
                os.environ["CHAINCONSULT_IN_PROCESS_WORKER"] = "1"
            metrics_dir = prepare_multiprocess_dir(ready.app.data_dir)
            typer.echo(f"chainconsult serving on http://{host}:{port}", err=True)
            if (warning := migration_warning(workers)) is not None:
                typer.echo(f"warning: {warning}", err=True)
            configure_logging(ready.app.log_level)
            # granian handles SIGTERM and SIGINT itself (graceful, see granian_server) and
            # returns: the embedded PostgreSQL is then stopped by the block above. A SIGKILL
            # leaves that to the next `serve`, but its workers must not outlive it.
            forked_children_stop_with_this_process()
            granian_server(
                APP_FACTORY,
                host=host,
                port=port,
                workers=workers,
                header_timeout_seconds=ready.security.header_timeout_seconds,
                keep_alive_seconds=ready.security.keep_alive_timeout_seconds,
                grace_seconds=ready.app.shutdown_grace_seconds,
                log_level=ready.app.log_level,
            ).serve()
    except KeyboardInterrupt:
        pass
    finally:
        if metrics_dir is not None:
            remove_multiprocess_dir(metrics_dir)
        lock.release()


@cli.command()
def migrate() -> None:
    """Apply every migration (app schema and job schema)."""
    with _database(_settings()) as settings:
        _migrate(settings)


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
        raise _fail(f"EMAIL: {exc}") from None
    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password (empty keeps an existing account's): ") or None
        if password is not None and getpass.getpass("Repeat: ") != password:
            raise _fail("the passwords differ")
    if password is not None and len(password) < 12:
        raise _fail("the password needs at least 12 characters")
    with _database(_settings()) as settings:
        created = asyncio.run(_ensure_admin(settings, email, password))
    typer.echo(f"{'created' if created else 'promoted'} admin {email}")


async def _ensure_admin(settings: Settings, email: str, password: str | None) -> bool:
    from chainconsult.accounts.service import AccountService
    from chainconsult.infra.cache import attach_cache, build_cache
    from chainconsult.infra.db.engine import build_engine, build_sessionmaker
    from chainconsult.infra.db.session import transaction

    engine = build_engine(settings.database, application_name="chainconsult-cli")
    # With the cache attached, running servers drop the account's cached role at once.
    cache = build_cache(settings)
    sessionmaker = build_sessionmaker(engine)
    attach_cache(sessionmaker, cache)
    try:
        async with transaction(sessionmaker) as session:
            try:
                _, created = await AccountService(session).ensure_admin(
                    email=email, password=password
                )
            except ValueError as exc:
                raise _fail(f"{exc} (use --password-stdin or a terminal)") from None
    finally:
        await cache.close()
        await engine.dispose()
    return created


@cli.command("demo-data")
def demo_data() -> None:
    """Load the demo marketplace data set.

    200 experts, 100 clients and 500 projects with proposals and reviews. A second run adds
    nothing. It prints the demo accounts' password."""
    from chainconsult.admin.demo_data import DemoDataError, load_from_cli

    settings = _settings()
    embedded = settings.database.is_embedded
    with _database(settings) as ready:
        if embedded:
            _migrate(ready)
        try:
            load_from_cli(ready, echo=typer.echo)
        except DemoDataError as exc:
            raise _fail(str(exc)) from None


@cli.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=1000,
            metavar="N",
            show_default="MAX_CONCURRENT_JOBS",
            help="Number of jobs this worker runs at once.",
        ),
    ] = None,
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue",
            "-q",
            metavar="QUEUE",
            show_default="every queue",
            help="Take jobs only from this queue (critical, default or low); repeat the "
            "option for several queues.",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            metavar="PORT",
            show_default="no metrics port",
            help="Serve this worker's Prometheus metrics (jobs_total, process) on this port.",
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(
            metavar="ADDRESS",
            help="Address of the metrics port; it has no access control of its own.",
        ),
    ] = "127.0.0.1",
) -> None:
    """Run a background job worker.

    On SIGTERM or Ctrl-C it takes no new job, lets running ones finish within
    JOB_SHUTDOWN_GRACE_SECONDS, and exits 0. Run any number of workers, on any hosts."""
    import asyncio

    from chainconsult.infra.monitoring.logging import configure_logging
    from chainconsult.infra.tracing import start_tracing, stop_tracing

    for name in queue or []:
        _check_queue(name)
    settings = _settings()
    configure_logging(settings.app.log_level)
    if start_tracing():
        configure_logging(settings.app.log_level, trace_ids=True)
    if metrics_port is not None:
        _serve_worker_metrics(metrics_host, metrics_port)
    with _database(settings) as ready:
        try:
            asyncio.run(_run_worker(ready, concurrency, queue or []))
        finally:
            stop_tracing()


def _check_queue(name: str) -> None:
    from chainconsult.infra.jobs import Queue

    known = sorted(q.value for q in Queue)
    if name not in known:
        raise _fail(f"--queue: {name!r} is not one of {', '.join(known)}.")


def _serve_worker_metrics(host: str, port: int) -> None:
    """prometheus-client's own exporter in a daemon thread: a standalone worker serves no
    HTTP otherwise, and its ``jobs_total`` would be seen by nobody. It has no TRUSTED_IPS check
    (that lives in the API's middleware), hence loopback by default: scrape it from the same
    host, or open it only to the scraper's network."""
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=host)
    except OSError as error:
        raise _fail(f"--metrics-port: cannot listen on {host}:{port}: {error.strerror}") from None


async def _run_worker(settings: Settings, concurrency: int | None, queues: list[str]) -> None:
    from chainconsult.infra.db.engine import build_engine, build_sessionmaker
    from chainconsult.infra.jobs.runtime import run_worker
    from chainconsult.schedules import register_schedules, worker_resources

    engine = build_engine(settings.database, application_name="chainconsult-worker")
    try:
        await run_worker(
            worker_resources(settings, build_sessionmaker(engine)),
            concurrency=concurrency,
            queues=queues,
            schedules=register_schedules,
        )
    finally:
        await engine.dispose()


jobs_cli = typer.Typer(
    help="Inspect and steer background jobs.", no_args_is_help=True, rich_markup_mode=None
)
cli.add_typer(jobs_cli, name="jobs")


@jobs_cli.command("list")
def jobs_list(
    status: Annotated[
        str | None,
        typer.Option(
            metavar="STATUS",
            help="Only jobs in this status: todo, doing, succeeded, failed, cancelled or aborted.",
        ),
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option(metavar="QUEUE", help="Only jobs of this queue: critical, default or low."),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            metavar="TASK", help="Only jobs of this task, such as accounts.send_welcome_email."
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(min=1, max=10_000, metavar="N", help="How many of the newest jobs to list."),
    ] = 50,
) -> None:
    """List the newest jobs and their last errors.

    One line per job: its id, queue, status, runs so far, task, and the last line of its
    last recorded error (the exception and its message)."""
    from chainconsult.infra.jobs.operations import STATUSES, list_jobs

    if status is not None and status not in STATUSES:
        raise _fail(f"--status: {status!r} is not one of {', '.join(STATUSES)}.")
    if queue is not None:
        _check_queue(queue)
    rows = _in_transaction(
        lambda session: list_jobs(session, status=status, queue=queue, task=task, limit=limit)
    )
    if not rows:
        typer.echo("No job matches.")
        return
    typer.echo(f"{'ID':>8}  {'QUEUE':<8}  {'STATUS':<9}  {'RUNS':>4}  {'TASK':<36}  LAST ERROR")
    for row in rows:
        # The whole line: the exception's name and message, which the operator needs whole.
        error = (row.last_error or "").strip().splitlines()
        typer.echo(
            f"{row.id:>8}  {row.queue:<8}  {row.status:<9}  {row.attempts:>4}  "
            f"{row.task_name:<36}  {error[-1] if error else ''}"
        )


@jobs_cli.command("retry")
def jobs_retry(
    job_id: Annotated[int, typer.Argument(metavar="JOB_ID", help="Id of a failed job.")],
) -> None:
    """Queue a failed job again, to run now."""
    from chainconsult.infra.jobs.operations import JobNotFound, JobStateConflict, retry_job

    try:
        _in_transaction(lambda session: retry_job(session, job_id))
    except (JobNotFound, JobStateConflict) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"job {job_id} is queued again; the next free worker runs it.")


@jobs_cli.command("cancel")
def jobs_cancel(
    job_id: Annotated[
        int, typer.Argument(metavar="JOB_ID", help="Id of a waiting or running job.")
    ],
) -> None:
    """Cancel a waiting job, or abort a running one.

    A waiting job is cancelled and never runs; the worker running a job is asked to abort
    it."""
    from chainconsult.infra.jobs.operations import JobNotFound, JobStateConflict, cancel_job

    try:
        outcome = _in_transaction(lambda session: cancel_job(session, job_id))
    except (JobNotFound, JobStateConflict) as exc:
        raise _fail(str(exc)) from None
    typer.echo(outcome)


cli.add_typer(backup_cli, name="backup")
cli.command("restore")(restore)
cli.command("config-reference")(config_reference)
cli.command("devchain")(devchain)

T = TypeVar("T")


def _in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
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

    with _database(_settings()) as settings:
        return asyncio.run(run(settings))


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

    text = migration_guide()
    if output is None:
        typer.echo(text, nl=False)
        return
    if check:
        if not output.exists() or output.read_text() != text:
            raise _fail(f"{output} is out of date: run `make api-guide`")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    typer.echo(f"wrote {output}", err=True)


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

    with _database(_settings()) as settings:
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
