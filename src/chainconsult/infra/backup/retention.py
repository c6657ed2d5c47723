"""Which backups the scheduled run keeps (BACKUP_RETENTION, e.g. ``7d,4w,6m``).

The rule of restic and borg: for each period kind, the newest backup of each of the last N
periods *that have a backup* is kept. Periods without a backup do not use up the count, so
when backups stop for a while the old ones are not pruned away to nothing; and the newest
backup is always kept."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Period = Callable[[dt.datetime], tuple[int, ...]]

PERIODS: dict[str, tuple[str, Period]] = {
    "h": ("hour", lambda t: (t.year, t.month, t.day, t.hour)),
    "d": ("day", lambda t: (t.year, t.month, t.day)),
    "w": ("week", lambda t: t.isocalendar()[:2]),
    "m": ("month", lambda t: (t.year, t.month)),
    "y": ("year", lambda t: (t.year,)),
}
_ITEM = re.compile(r"\s*(\d+)\s*([hdwmy])\s*")


@dataclass(frozen=True, slots=True)
class RetentionRule:
    counts: tuple[tuple[str, int], ...]
    """(period letter, how many) in the order written."""

    @classmethod
    def parse(cls, text: str) -> RetentionRule:
        counts: list[tuple[str, int]] = []
        for item in text.split(","):
            match = _ITEM.fullmatch(item)
            if match is None:
                raise ValueError(
                    f"{text!r} is not a retention rule like '7d,4w,6m' "
                    "(h hours, d days, w weeks, m months, y years)"
                )
            letter = match.group(2)
            if any(seen == letter for seen, _ in counts):
                raise ValueError(f"{text!r} names the period {letter!r} twice")
            counts.append((letter, int(match.group(1))))
        return cls(tuple(counts))

    def keep(self, times: Iterable[dt.datetime]) -> set[dt.datetime]:
        """The backup times to keep among ``times`` (aware datetimes; compared in UTC)."""
        newest_first = sorted(set(times), reverse=True)
        kept: set[dt.datetime] = set(newest_first[:1])
        for letter, count in self.counts:
            period = PERIODS[letter][1]
            seen: set[tuple[int, ...]] = set()
            for when in newest_first:
                if len(seen) >= count:
                    break
                bucket = period(when.astimezone(dt.UTC))
                if bucket not in seen:
                    seen.add(bucket)
                    kept.add(when)
        return kept
