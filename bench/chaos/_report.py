"""What a chaos run found: failed requests (in flight at a fault or not), acknowledged writes
against rows, deferred jobs against completed ones, stale cached reads, and recovery times."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.chaos._load import Load, Outcome
from bench.chaos._stack import Stack

APP_TASKS = ("accounts.send_welcome_email", "notifications.send_email")
"""The jobs a run counts (the periodic maintenance tasks come and go by themselves)."""


@dataclass(frozen=True)
class FaultWindow:
    """From the moment a fault is injected until it has fully taken effect (a signalled
    backend has exited, a killed process is gone), and the client ports of the connections the
    fault broke (a killed server worker's)."""

    label: str
    start: float
    end: float
    ports: frozenset[int] = frozenset()

    def overlaps(self, outcome: Outcome) -> bool:
        return outcome.started <= self.end and outcome.ended >= self.start

    def broke_connection_of(self, outcome: Outcome) -> bool:
        """Sent after the fault on a connection it broke, before the client noticed: no answer
        on one of ``ports``. A 5xx is an answer, from a live worker, and never counts here."""
        return (
            outcome.status is None and outcome.port in self.ports and outcome.started >= self.start
        )


@dataclass
class JobAudit:
    deferred: int = 0
    succeeded: int = 0
    not_succeeded: dict[str, int] = field(default_factory=dict)
    absent: int = 0
    """Jobs the run saw committed (a registration's welcome email, a job the run deferred
    itself) with no row at all."""
    started_more_than_once: int = 0
    emails_received: int = 0
    duplicate_emails: int = 0

    @property
    def lost(self) -> int:
        return self.deferred - self.succeeded + self.absent


@dataclass
class ScenarioReport:
    name: str
    fault: str
    load_seconds: float
    outcomes: list[Outcome]
    windows: list[FaultWindow]
    writes: dict[str, tuple[int, int]]
    jobs: JobAudit
    stale_reads: int
    recovery: dict[str, str]
    notes: list[str] = field(default_factory=list)
    t0: float = 0.0

    @property
    def failures(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.failed]

    def in_flight(self, outcome: Outcome) -> bool:
        return any(
            window.overlaps(outcome) or window.broke_connection_of(outcome)
            for window in self.windows
        )

    def on_broken_connections(self, outcome: Outcome) -> bool:
        return not any(w.overlaps(outcome) for w in self.windows) and any(
            w.broke_connection_of(outcome) for w in self.windows
        )

    @property
    def failures_outside(self) -> list[Outcome]:
        return [outcome for outcome in self.failures if not self.in_flight(outcome)]

    @property
    def lost_writes(self) -> int:
        return sum(acked - stored for acked, stored in self.writes.values())

    @property
    def passed(self) -> bool:
        return (
            self.lost_writes == 0
            and self.jobs.lost == 0
            and not self.failures_outside
            and self.stale_reads == 0
        )

    def _latency(self, outcomes: list[Outcome]) -> str:
        durations = sorted((o.ended - o.started) * 1000 for o in outcomes if not o.failed)
        if len(durations) < 2:
            return "-"
        p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
        return f"{statistics.median(durations):.1f} / {p99:.1f}"

    def markdown(self) -> str:
        failures = self.failures
        in_flight = [outcome for outcome in failures if self.in_flight(outcome)]
        outside = self.failures_outside
        client_errors = Counter(
            f"{o.kind} {o.status} {o.error}"
            for o in self.outcomes
            if o.status is not None and 400 <= o.status < 500
        )
        lines = [
            f"### {self.name}: {'PASS' if self.passed else 'FAIL'}",
            "",
            f"Fault: {self.fault}",
            "",
            "| measure | value |",
            "|---|---|",
            f"| requests (load {self.load_seconds:.0f} s) | {len(self.outcomes)} "
            f"({len(self.outcomes) / self.load_seconds:.0f}/s) |",
            f"| failed requests (5xx or no answer) | {len(failures)} |",
            f"| of which in flight at a fault | {len(in_flight)} |",
            f"| of those, sent after it on a connection it broke | "
            f"{sum(1 for o in in_flight if self.on_broken_connections(o))} |",
            f"| of which outside the fault windows | {len(outside)} |",
        ]
        for window in self.windows:
            lines.append(
                f"| fault window {window.label} | +{window.start - self.t0:.2f} s, "
                f"{(window.end - window.start) * 1000:.0f} ms |"
            )
        for kind, (acked, stored) in self.writes.items():
            lines.append(f"| acknowledged {kind} / rows found / lost | {acked} / {stored} / "
                         f"{acked - stored} |")  # fmt: skip
        jobs = self.jobs
        lines += [
            f"| jobs deferred / succeeded / lost | {jobs.deferred} / {jobs.succeeded} / "
            f"{jobs.lost} |",
            f"| jobs started more than once (re-run after the fault) | "
            f"{jobs.started_more_than_once} |",
            f"| emails received / duplicates | {jobs.emails_received} / {jobs.duplicate_emails} |",
            f"| stale cached reads (> 1 s after the write) | {self.stale_reads} |",
            f"| latency p50 / p99 ms, whole run | {self._latency(self.outcomes)} |",
        ]
        lines += [f"| {key} | {value} |" for key, value in self.recovery.items()]
        if failures:
            lines += ["", "Failed requests:", ""]
            summary = Counter(
                (
                    (
                        "sent on a connection the fault broke"
                        if self.on_broken_connections(o)
                        else "in flight"
                        if self.in_flight(o)
                        else "OUTSIDE"
                    ),
                    o.kind,
                    o.status if o.status is not None else "no answer",
                    o.error,
                )
                for o in failures
            )
            for (where, kind, status, error), count in sorted(summary.items(), key=str):
                lines.append(f"- {count} x {kind} {status} {error} ({where})")
            if outside:
                offsets = ", ".join(
                    f"+{o.started - self.t0:.2f}s for {(o.ended - o.started) * 1000:.0f} ms"
                    f" (client port {o.port})"
                    for o in outside[:10]
                )
                lines.append(f"- outside the windows, started at {offsets}")
        if client_errors:
            lines += ["", "4xx answers (not failures of the platform): " + ", ".join(
                f"{count} x {what}" for what, count in sorted(client_errors.items())
            )]  # fmt: skip
        if jobs.not_succeeded:
            lines += ["", f"Jobs not succeeded, by status: {jobs.not_succeeded}"]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def audit_writes(stack: Stack, load: Load) -> dict[str, tuple[int, int]]:
    """Acknowledged (201) writes against the rows the database holds."""
    result = {}
    for kind, table in (("registrations", "accounts"), ("proposals", "proposals")):
        ids = load.acknowledged("register" if kind == "registrations" else "propose")
        found = stack.query(
            f"SELECT count(*) AS n FROM {table} WHERE id = ANY(%s::uuid[])",
            (ids,),
        )[0]["n"]
        result[kind] = (len(ids), int(found))
    return result


def wait_for_jobs(stack: Stack, *, timeout: float) -> float:
    """Wait until no counted job is waiting or running; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        pending = stack.query(
            "SELECT count(*) AS n FROM procrastinate_jobs"
            " WHERE task_name = ANY(%s) AND status IN ('todo', 'doing')",
            (list(APP_TASKS),),
        )[0]["n"]
        if pending == 0:
            return time.monotonic() - started
        time.sleep(0.25)
    return time.monotonic() - started


def audit_jobs(stack: Stack, load: Load, *, deferred_ids: list[int] | None = None) -> JobAudit:
    """Every counted job against its outcome; every acknowledged registration must have its
    welcome-email job, every job the run deferred must exist."""
    audit = JobAudit()
    rows = stack.query(
        "SELECT status::text AS status, count(*) AS n FROM procrastinate_jobs"
        " WHERE task_name = ANY(%s) GROUP BY status",
        (list(APP_TASKS),),
    )
    by_status = {row["status"]: int(row["n"]) for row in rows}
    audit.deferred = sum(by_status.values())
    audit.succeeded = by_status.pop("succeeded", 0)
    audit.not_succeeded = by_status
    registrations = load.acknowledged("register")
    welcomed = stack.query(
        "SELECT count(DISTINCT args->>'account_id') AS n FROM procrastinate_jobs"
        " WHERE task_name = 'accounts.send_welcome_email' AND args->>'account_id' = ANY(%s)",
        (registrations,),
    )[0]["n"]
    audit.absent = len(registrations) - int(welcomed)
    if deferred_ids:
        present = stack.query(
            "SELECT count(*) AS n FROM procrastinate_jobs WHERE id = ANY(%s)", (deferred_ids,)
        )[0]["n"]
        audit.absent += len(set(deferred_ids)) - int(present)
    audit.started_more_than_once = int(
        stack.query(
            "SELECT count(*) AS n FROM (SELECT e.job_id FROM procrastinate_events e"
            " JOIN procrastinate_jobs j ON j.id = e.job_id"
            " WHERE e.type = 'started' AND j.task_name = ANY(%s)"
            " GROUP BY e.job_id HAVING count(*) > 1) AS again",
            (list(APP_TASKS),),
        )[0]["n"]
    )
    audit.emails_received = stack.smtp.count()
    audit.duplicate_emails = stack.smtp.duplicates()
    return audit


def first_success_after(outcomes: list[Outcome], moment: float, kinds: tuple[str, ...]) -> float:
    """Seconds from ``moment`` until a request of ``kinds`` that started after it succeeded."""
    times = [
        o.ended
        for o in outcomes
        if o.kind in kinds and o.started >= moment and not o.failed and o.status is not None
    ]
    return (min(times) - moment) if times else float("nan")


def last_failure_after(outcomes: list[Outcome], moment: float) -> float | None:
    """Seconds from ``moment`` until the last failed request ended (None: none failed)."""
    times = [o.ended for o in outcomes if o.failed and o.ended >= moment]
    return (max(times) - moment) if times else None


def last_failure_of(outcomes: list[Outcome], window: FaultWindow) -> float | None:
    """Seconds from the fault until the last of the failed requests it caught ended."""
    times = [o.ended for o in outcomes if o.failed and window.overlaps(o)]
    return (max(times) - window.start) if times else None
