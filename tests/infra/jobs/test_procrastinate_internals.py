"""Jobs use parts of procrastinate below its Python API: its versioned SQL functions and
composite type (``deferring_each``, decision 0014), the text of the error its finish and
retry functions raise (``outcomes.py``), its named queries (``operations.py``) and the
methods of ``JobManager`` that ``OutcomeRecordingJobManager`` overrides. pyproject.toml pins
procrastinate below the next minor version; these tests fail loudly on any version where
those parts differ."""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version

from procrastinate import PsycopgConnector, manager
from procrastinate import sql as procrastinate_sql

from chainconsult.infra.jobs.outcomes import NOT_SETTLEABLE
from tests.market import query


def test_the_installed_procrastinate_is_the_one_the_jobs_were_written_against() -> None:
    assert version("procrastinate").startswith("3.10."), version("procrastinate")


def test_the_defer_function_takes_an_array_of_the_composite_deferring_each_builds(
    database_url: str,
) -> None:
    functions = query(
        database_url,
        "SELECT pg_get_function_identity_arguments(oid), pg_get_function_result(oid) "
        "FROM pg_proc WHERE proname = 'procrastinate_defer_jobs_v1'",
    )
    assert functions == [("jobs procrastinate_job_to_defer_v1[]", "bigint[]")]
    fields = query(
        database_url,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'procrastinate_job_to_defer_v1'::regclass AND attnum > 0 "
        "ORDER BY attnum",
    )
    # deferring_each (infra/jobs/defer.py) builds the tuple in this order.
    assert fields == [
        ("queue_name", "character varying"),
        ("task_name", "character varying"),
        ("priority", "integer"),
        ("lock", "text"),
        ("queueing_lock", "text"),
        ("args", "jsonb"),
        ("scheduled_at", "timestamp with time zone"),
    ]


def test_finish_and_retry_raise_the_message_outcomes_recognises(database_url: str) -> None:
    for name in ("finish_job", "retry_job"):
        called = re.search(r"procrastinate_\w+_v\d+", procrastinate_sql.queries[name])
        assert called is not None, procrastinate_sql.queries[name]
        source = query(
            database_url, "SELECT prosrc FROM pg_proc WHERE proname = %s", called.group()
        )
        assert len(source) == 1, called.group()
        assert any(message in source[0][0] for message in NOT_SETTLEABLE), called.group()


def test_the_named_queries_take_the_parameters_operations_sends() -> None:
    queries = procrastinate_sql.queries
    assert set(re.findall(r"%\((\w+)\)s", queries["retry_job"])) == {
        "job_id",
        "retry_at",
        "new_priority",
        "new_queue_name",
        "new_lock",
    }
    assert set(re.findall(r"%\((\w+)\)s", queries["cancel_job"])) == {
        "job_id",
        "abort",
        "delete_job",
    }
    parameters = inspect.signature(
        PsycopgConnector.execute_query_all_async_with_connection
    ).parameters
    assert list(parameters)[:3] == ["self", "connection", "query"]


def test_the_job_manager_methods_overridden_keep_their_signatures() -> None:
    finish = inspect.signature(manager.JobManager.finish_job_by_id_async)
    assert list(finish.parameters) == ["self", "job_id", "status", "delete_job"]
    retry = inspect.signature(manager.JobManager.retry_job_by_id_async)
    assert list(retry.parameters) == ["self", "job_id", "retry_at", "priority", "queue", "lock"]
