"""Progress of long steps (dump, upload, download, restore) as lines an operator can follow,
at most one every few seconds per step."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Unit = Literal["bytes", "tables", "segments"]


@dataclass(frozen=True, slots=True)
class Tick:
    step: str
    """dump, upload, check, download, decrypt, restore, recover..."""
    done: int
    total: int | None = None
    unit: Unit = "bytes"
    detail: str = ""

    @property
    def finished(self) -> bool:
        return self.total is not None and self.done >= self.total

    def render(self) -> str:
        if self.unit != "bytes":
            name = self.unit.removesuffix("s")
            amount = f"{name} {self.done}/{self.total}" if self.total else f"{name} {self.done}"
        elif self.total:
            share = 100 * self.done // self.total
            amount = f"{human_size(self.done)} of {human_size(self.total)} ({share} %)"
        else:
            amount = human_size(self.done)
        return f"{self.step}: {amount}" + (f" {self.detail}" if self.detail else "")


Progress = Callable[[Tick], None]


def silent(_tick: Tick) -> None:
    """Progress nobody watches."""


class ThrottledLines:
    """Writes a tick as a line when its step starts or ends, and at most once every
    ``interval_s`` in between: a 1-million-row dump reports every few seconds, not per
    kilobyte."""

    def __init__(
        self,
        echo: Callable[[str], None],
        *,
        interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.echo = echo
        self.interval_s = interval_s
        self.clock = clock
        self._step: str | None = None
        self._last = 0.0

    def __call__(self, tick: Tick) -> None:
        now = self.clock()
        if tick.step != self._step or tick.finished or now - self._last >= self.interval_s:
            self._step = tick.step
            self._last = now
            self.echo(tick.render())


def human_size(count: int) -> str:
    """1234567 -> '1.2 MB'."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
