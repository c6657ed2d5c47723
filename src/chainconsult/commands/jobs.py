"""`chainconsult jobs`: list the newest jobs, retry a failed one, cancel or abort one."""

from __future__ import annotations

from typing import Annotated

import typer

from chainconsult.commands.environment import fail, in_transaction


def check_queue(name: str) -> None:
    """Stop the command when --queue names no queue."""
    from chainconsult.infra.jobs import Queue

    known = sorted(q.value for q in Queue)
    if name not in known:
        raise fail(f"--queue: {name!r} is not one of {', '.join(known)}.")


jobs_cli = typer.Typer(
    help="Inspect and steer background jobs.", no_args_is_help=True, rich_markup_mode=None
)


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
        raise fail(f"--status: {status!r} is not one of {', '.join(STATUSES)}.")
    if queue is not None:
        check_queue(queue)
    rows = in_transaction(
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
        in_transaction(lambda session: retry_job(session, job_id))
    except (JobNotFound, JobStateConflict) as exc:
        raise fail(str(exc)) from None
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
        outcome = in_transaction(lambda session: cancel_job(session, job_id))
    except (JobNotFound, JobStateConflict) as exc:
        raise fail(str(exc)) from None
    typer.echo(outcome)
