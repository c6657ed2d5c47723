"""The verdict `make chaos` prints: which failures a fault excuses (requests in flight while it
took effect) and which fail the run (anything later, a lost write or job, a stale read)."""

from __future__ import annotations

from bench.chaos._load import FreshnessLog, Outcome
from bench.chaos._report import APP_TASKS, FaultWindow, JobAudit, ScenarioReport

import chainconsult.schedules  # noqa: F401  (imports every domain's tasks)
from chainconsult.infra.jobs import job_app

WINDOW = FaultWindow("kill", start=10.0, end=10.05)


def report(
    outcomes: list[Outcome],
    *,
    writes: dict[str, tuple[int, int]] | None = None,
    jobs: JobAudit | None = None,
    stale_reads: int = 0,
) -> ScenarioReport:
    return ScenarioReport(
        name="test",
        fault="a test fault",
        load_seconds=20,
        outcomes=outcomes,
        windows=[WINDOW],
        writes=writes or {"registrations": (3, 3)},
        jobs=jobs or JobAudit(deferred=3, succeeded=3),
        stale_reads=stale_reads,
        recovery={},
    )


def test_a_request_cut_off_by_the_fault_is_excused() -> None:
    cut_off = Outcome("directory", started=9.9, ended=10.02, status=None, error="ReadError")
    verdict = report([Outcome("me", 1.0, 1.1, 200), cut_off])

    assert verdict.passed
    assert verdict.failures == [cut_off]
    assert verdict.failures_outside == []
    assert "of which in flight at a fault | 1 |" in verdict.markdown()


def test_a_5xx_for_a_request_begun_after_the_fault_fails_the_run() -> None:
    late = Outcome("register", started=10.2, ended=10.3, status=503, error="database-unavailable")
    verdict = report([late])

    assert not verdict.passed
    assert verdict.failures_outside == [late]
    assert "1 x register 503 database-unavailable (OUTSIDE)" in verdict.markdown()


def test_a_4xx_is_reported_but_is_not_a_failure_of_the_platform() -> None:
    verdict = report([Outcome("propose", 12.0, 12.1, 409, error="conflict")])

    assert verdict.passed
    assert "1 x propose 409 conflict" in verdict.markdown()


def test_an_acknowledged_write_without_its_row_fails_the_run() -> None:
    verdict = report([], writes={"proposals": (10, 9)})

    assert verdict.lost_writes == 1
    assert not verdict.passed


def test_a_committed_job_that_never_succeeded_or_vanished_fails_the_run() -> None:
    assert not report([], jobs=JobAudit(deferred=5, succeeded=4)).passed
    assert not report([], jobs=JobAudit(deferred=5, succeeded=5, absent=1)).passed
    assert report([], jobs=JobAudit(deferred=5, succeeded=5)).passed


def test_a_cached_read_may_lag_a_write_by_one_second_and_no_more() -> None:
    log = FreshnessLog(writes=[(1, 100.0), (2, 103.0)])
    log.reads = [
        (100.5, 0),  # within the second after write 1: allowed
        (101.2, 1),
        (101.5, 0),  # more than a second after write 1 and still the old title
        (103.9, 1),  # within the second after write 2: allowed
        (104.5, 2),
    ]

    assert log.stale_reads() == [(101.5, 0, 1)]
    assert not report([], stale_reads=len(log.stale_reads())).passed


def test_no_answer_on_a_connection_the_fault_broke_is_excused_and_shown_apart() -> None:
    """A killed worker's connections look alive to the client until it reads from them: a
    request sent on one after the kill is lost to the fault, however late it was sent."""
    window = FaultWindow("kill", start=10.0, end=10.05, ports=frozenset({40001, 40002}))
    late_on_broken = Outcome("expert", 10.2, 10.21, None, "ReadError", port=40002)
    late_elsewhere = Outcome("expert", 10.2, 10.21, None, "ReadError", port=40009)
    answered_5xx = Outcome("me", 10.3, 10.31, 503, "unavailable", port=40001)
    before_the_kill = Outcome("expert", 9.0, 9.01, None, "ReadError", port=40001)
    verdict = ScenarioReport(
        name="test",
        fault="a test fault",
        load_seconds=20,
        outcomes=[late_on_broken, late_elsewhere, answered_5xx, before_the_kill],
        windows=[window],
        writes={},
        jobs=JobAudit(),
        stale_reads=0,
        recovery={},
    )

    assert verdict.failures_outside == [late_elsewhere, answered_5xx, before_the_kill]
    assert not verdict.passed
    text = verdict.markdown()
    assert "| of those, sent after it on a connection it broke | 1 |" in text
    assert "1 x expert no answer ReadError (sent on a connection the fault broke)" in text


def test_the_jobs_a_chaos_run_counts_are_tasks_the_platform_has() -> None:
    # A renamed task would leave the audit counting nothing for it, and passing.
    assert set(APP_TASKS) <= set(job_app.tasks)
