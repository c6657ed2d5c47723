"""When a failed job runs again: exponential backoff with jitter and a cap, and never for a
failure that another attempt cannot fix."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from procrastinate import BaseRetryStrategy, RetryDecision
from procrastinate.jobs import Job


class PermanentJobError(Exception):
    """Raised by a task when trying again cannot help (an invalid recipient, a 4xx answer
    from a webhook): the job is marked failed at once."""


@dataclass(frozen=True, slots=True)
class Backoff(BaseRetryStrategy):
    """Attempt n (0-based) waits ``base * 2**n`` seconds, spread by ±``jitter`` so that
    jobs failing together do not come back together, and never more than ``cap``.

    procrastinate's own RetryStrategy has neither jitter nor a cap, and tenacity's or
    stamina's waits live inside their own retry loops, which a job queue cannot use: the
    decision here is one delay per failed run. With jitter below 1/3 consecutive delays
    cannot overlap, so they always grow until the cap."""

    max_attempts: int = 8
    """Runs in total, the first included; the last failure marks the job failed."""
    base_seconds: float = 5.0
    cap_seconds: float = 3600.0
    jitter: float = 0.25

    def delay(self, attempts: int) -> float:
        """Seconds to wait after a failure of the run that had ``attempts`` runs before it."""
        raw = self.base_seconds * 2 ** min(attempts, 60)
        # Not for security: spreading retries needs no unpredictability.
        spread = random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311
        return float(min(self.cap_seconds, raw * spread))

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, PermanentJobError):
            return None
        if job.attempts + 1 >= self.max_attempts:
            return None
        wait = dt.timedelta(seconds=self.delay(job.attempts))
        return RetryDecision(retry_at=dt.datetime.now(dt.UTC) + wait)
