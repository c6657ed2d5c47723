"""What a load hands the cache, and what a single-flight leader hands the callers that
waited for its load."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Loaded:
    payload: bytes
    cacheable: bool = True


@dataclass(frozen=True, slots=True)
class FlightOutcome:
    payload: bytes | None = None
    error: BaseException | None = None
    retry: bool = False
    """The leader was cancelled: followers load for themselves."""
