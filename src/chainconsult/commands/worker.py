"""`chainconsult worker`: a background job worker, with its own metrics port on request."""

from __future__ import annotations

from typing import Annotated

import typer

from chainconsult.commands.environment import database, fail, settings_from_environment
from chainconsult.commands.jobs import check_queue
from chainconsult.config import Settings


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
        check_queue(name)
    settings = settings_from_environment()
    configure_logging(settings.app.log_level)
    start_tracing()
    if metrics_port is not None:
        _serve_worker_metrics(metrics_host, metrics_port)
    with database(settings) as ready:
        try:
            asyncio.run(_run_worker(ready, concurrency, queue or []))
        finally:
            stop_tracing()


def _serve_worker_metrics(host: str, port: int) -> None:
    """prometheus-client's own exporter in a daemon thread: a standalone worker serves no
    HTTP otherwise, and its ``jobs_total`` would be seen by nobody. It has no TRUSTED_IPS check
    (that lives in the API's middleware), hence loopback by default: scrape it from the same
    host, or open it only to the scraper's network."""
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=host)
    except OSError as error:
        raise fail(f"--metrics-port: cannot listen on {host}:{port}: {error.strerror}") from None


async def _run_worker(settings: Settings, concurrency: int | None, queues: list[str]) -> None:
    from chainconsult.infra.cache import attach_cache, build_cache
    from chainconsult.infra.db.engine import build_engine, build_sessionmaker
    from chainconsult.infra.jobs.worker import run_worker
    from chainconsult.infra.resources import shared_redis
    from chainconsult.schedules import register_schedules, worker_resources

    engine = build_engine(settings.database, application_name="chainconsult-worker")
    redis = shared_redis(settings.redis)
    # So that the jobs' writes invalidate what the servers cached (they trust their memory
    # for a whole TTL while their channel is up); started, so a failed send is sent again.
    cache = build_cache(settings, redis, engine)
    await cache.start()
    sessionmaker = build_sessionmaker(engine)
    attach_cache(sessionmaker, cache)
    try:
        await run_worker(
            worker_resources(settings, sessionmaker),
            concurrency=concurrency,
            queues=queues,
            schedules=register_schedules,
        )
    finally:
        await cache.close()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
