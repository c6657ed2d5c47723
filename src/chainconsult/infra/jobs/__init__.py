"""Background jobs on procrastinate (PostgreSQL): declare a task with ``task``, queue it with
``defer`` inside the caller's transaction. Workers: worker.py; schedules:
chainconsult.schedules."""

from chainconsult.infra.jobs.defer import (
    DeferOptions,
    defer,
    defer_each,
    defer_many,
    deferring_each,
)
from chainconsult.infra.jobs.job_app import job_app, task
from chainconsult.infra.jobs.queues import Queue
from chainconsult.infra.jobs.resources import JobResources, job_transaction, resources
from chainconsult.infra.jobs.retry import Backoff, PermanentJobError

__all__ = [
    "Backoff",
    "DeferOptions",
    "JobResources",
    "PermanentJobError",
    "Queue",
    "defer",
    "defer_each",
    "defer_many",
    "deferring_each",
    "job_app",
    "job_transaction",
    "resources",
    "task",
]
