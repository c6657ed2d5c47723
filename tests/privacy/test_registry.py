"""Every table that references an account is in the personal-data registry, so export and
erasure cannot silently miss a table that someone adds later."""

from __future__ import annotations

import inspect

import chainconsult.schedules  # noqa: F401 - registers every task
from chainconsult.infra.jobs import job_app
from chainconsult.privacy.job_tables import JOB_ARGUMENTS_NAMING_AN_ACCOUNT
from chainconsult.privacy.service import personal_data
from tests.privacy.test_export_and_erasure import fk_columns_to_accounts


def test_every_table_referencing_accounts_is_registered(database_url: str) -> None:
    registered = {entry.table: set(entry.owners) for entry in personal_data.tables()}
    missing = [
        f"{table}.{column}"
        for table, column in fk_columns_to_accounts(database_url)
        if column not in registered.get(table, set())
    ]
    assert missing == [], (
        "register these in chainconsult.privacy (see privacy/registry.py): " + ", ".join(missing)
    )


def test_every_task_argument_is_an_id_the_erasure_knows_or_holds_nothing_personal() -> None:
    """Job arguments are stored and logged by procrastinate: a task may take the id of what it
    works on (and must then be findable by export and erasure), never a name or an address."""
    impersonal = {"timestamp"}  # the schedule time of periodic tasks
    arguments = {
        name: set(inspect.signature(task.func).parameters) - {"context"}
        for name, task in job_app.tasks.items()
        if task.func.__module__.startswith("chainconsult.")
    }
    assert "notifications.send_email" in arguments
    unknown = {
        name: sorted(params - impersonal - set(JOB_ARGUMENTS_NAMING_AN_ACCOUNT))
        for name, params in arguments.items()
    }
    assert {name: params for name, params in unknown.items() if params} == {}
