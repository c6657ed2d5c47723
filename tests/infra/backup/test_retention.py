"""BACKUP_RETENTION: the newest backup of each of the last N hours, days, weeks, months or
years that have one; the scheduled run deletes the rest (and leftovers of dead runs)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from chainconsult.config import ConfigError
from chainconsult.infra.backup.catalog import list_backups, prune
from chainconsult.infra.backup.manifest import Manifest, dump_key
from chainconsult.infra.backup.retention import RetentionRule
from chainconsult.infra.backup.store import FileStore
from tests.conftest import make_settings

START = dt.datetime(2025, 1, 1, 2, 37, tzinfo=dt.UTC)


def daily(days: int, start: dt.datetime = START) -> list[dt.datetime]:
    return [start + dt.timedelta(days=n) for n in range(days)]


def newest_per(times: list[dt.datetime], period: str, count: int) -> set[dt.datetime]:
    keys = {
        "d": lambda t: t.date(),
        "w": lambda t: t.isocalendar()[:2],
        "m": lambda t: (t.year, t.month),
    }
    newest: dict[object, dt.datetime] = {}
    for when in times:
        key = keys[period](when)
        newest[key] = max(newest.get(key, when), when)
    return set(sorted(newest.values())[-count:])


def test_daily_backups_keep_seven_days_four_weeks_and_six_months() -> None:
    times = daily(400)

    kept = RetentionRule.parse("7d,4w,6m").keep(times)

    expected = newest_per(times, "d", 7) | newest_per(times, "w", 4) | newest_per(times, "m", 6)
    assert kept == expected
    assert len(kept) < 7 + 4 + 6  # the newest day is also the newest of its week and month
    assert max(times) in kept


def test_when_backups_stopped_the_old_ones_are_not_pruned_to_nothing() -> None:
    before_the_gap = daily(30)
    after_the_gap = [before_the_gap[-1] + dt.timedelta(days=120)]

    kept = RetentionRule.parse("7d").keep(before_the_gap + after_the_gap)

    assert kept == set(after_the_gap) | set(before_the_gap[-6:])


@pytest.mark.parametrize("rule", ["7", "7x", "d7", "7d,7d", "7d;4w"])
def test_a_malformed_rule_stops_start_up_naming_the_variable(rule: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BACKUP_RETENTION"):
        make_settings("postgresql://x@localhost/x", tmp_path, BACKUP_RETENTION=rule)


def synthetic_backup(store: FileStore, at: dt.datetime) -> str:
    """A backup as take_backup leaves it, at a time the test chooses."""
    manifest = Manifest(
        id=f"{at:%Y%m%dT%H%M%SZ}-0000",
        created_at=at,
        database="chainconsult",
        server_version="15.20",
        file="database.dump",
        size=4,
        sha256="0" * 64,
        encrypted_to=None,
        schema_revision="head",
        row_counts={},
        tools={},
        seconds={},
        verified_at=at,
    )
    store.put_bytes(dump_key(manifest.id, "database.dump"), b"dump")
    store.put_bytes(dump_key(manifest.id, "manifest.json"), manifest.to_json())
    return manifest.id


def test_prune_deletes_what_the_rule_does_not_keep_and_leftovers_of_dead_runs(
    tmp_path: Path,
) -> None:
    store = FileStore(tmp_path / "store", f"file://{tmp_path}/store")
    times = daily(60)
    ids = {synthetic_backup(store, when): when for when in times}
    now = times[-1] + dt.timedelta(hours=1)
    store.put_bytes(dump_key("20250101T000000Z-dead", "database.dump"), b"half")
    store.put_bytes(dump_key("20250302T030000Z-busy", "database.dump"), b"uploading")
    rule = RetentionRule.parse("7d,4w")
    # The leftover of a dead run is two months old; the other one is fresh (still uploading).
    for backup_id, age in (("20250101T000000Z-dead", 60 * 24), ("20250302T030000Z-busy", 1)):
        when = (now - dt.timedelta(hours=age)).timestamp()
        os.utime(store.root / "dumps" / backup_id / "database.dump", (when, when))

    deleted = prune(store, rule, now=now)

    kept_times = rule.keep(times)
    remaining = {item.id for item in list_backups(store)}
    assert remaining == {i for i, when in ids.items() if when in kept_times} | {
        "20250302T030000Z-busy"
    }
    assert set(deleted) == (set(ids) - remaining) | {"20250101T000000Z-dead"}
    assert not (store.root / "dumps" / "20250101T000000Z-dead").exists()
