"""`chainconsult serve`: the API server on granian, with the embedded PostgreSQL when
DATABASE_URL is unset."""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import resource
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from chainconsult.commands.environment import (
    database,
    fail,
    migrate_database,
    settings_from_environment,
)
from chainconsult.infra.embedded.lock import ServeLock
from chainconsult.infra.embedded.postgres import EmbeddedDatabaseError
from chainconsult.infra.listen_queue import migration_warning
from chainconsult.infra.monitoring.logging import configure_logging
from chainconsult.infra.monitoring.multiproc import (
    prepare_multiprocess_dir,
    remove_multiprocess_dir,
)
from chainconsult.infra.parent_death import forked_children_stop_with_this_process

if TYPE_CHECKING:
    from granian.server.common import AbstractServer

APP_FACTORY = "chainconsult.app:create_app"
"""What `serve` runs in each worker."""


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
    settings = settings_from_environment()
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
            raise fail(str(exc)) from None
    try:
        with database(settings, supervised=True) as ready:
            if embedded:
                migrate_database(ready)
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
