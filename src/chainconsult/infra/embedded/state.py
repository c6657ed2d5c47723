"""What the supervisor in the `serve` process tells its server workers about the embedded
PostgreSQL: a small JSON file in the data dir, written when the server goes down or comes back.

The workers' `/livez` reads it: an embedded server that stays down while the supervisor keeps
failing to restart it will not recover by itself, and restarting `serve` (what a failing
liveness probe makes an orchestrator do) is the remedy left. The verdict is made by the reader
from the time the outage began, so a supervisor stuck in a restart still lets /livez fail."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STATE_FILE_NAME = "embedded-postgres.json"
REREAD_S = 1.0
"""How long a worker trusts what it read: /livez is probed often and the file changes rarely."""


@dataclass(frozen=True, slots=True)
class SupervisorState:
    down_since: float | None
    """``time.monotonic()`` when the outage began (CLOCK_MONOTONIC: one clock for every process
    of the host), or None while the server runs."""
    restarts: int
    """Successful restarts since `serve` started."""


def write_state(path: Path, state: SupervisorState) -> None:
    """Replace the file at once, so a reader never sees half of it."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps({"down_since": state.down_since, "restarts": state.restarts}))
    partial.replace(path)


def read_state(path: Path) -> SupervisorState | None:
    """None when there is no readable state (not written yet, or not ours)."""
    try:
        raw = json.loads(path.read_text())
        down_since = raw["down_since"]
        return SupervisorState(
            down_since=None if down_since is None else float(down_since),
            restarts=int(raw["restarts"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


class EmbeddedDatabaseWatch:
    """A server worker's view of the supervisor's state file, for /livez."""

    def __init__(
        self, path: Path, *, max_down_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self.max_down_s = max_down_s
        self._clock = clock
        self._state: SupervisorState | None = None
        self._read_at = float("-inf")

    def state(self) -> SupervisorState | None:
        now = self._clock()
        if now - self._read_at >= REREAD_S:
            self._state, self._read_at = read_state(self.path), now
        return self._state

    def gave_up(self) -> bool:
        """Down for longer than ``max_down_s`` although the supervisor kept restarting it."""
        state = self.state()
        return (
            state is not None
            and state.down_since is not None
            and self._clock() - state.down_since > self.max_down_s
        )
