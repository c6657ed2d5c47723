"""The server workers' view of the supervisor's state file, which /livez judges by."""

from __future__ import annotations

from pathlib import Path

from chainconsult.infra.embedded.state import (
    REREAD_S,
    EmbeddedDatabaseWatch,
    SupervisorState,
    write_state,
)


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_the_watch_gives_up_only_once_the_outage_outlasts_the_limit(tmp_path: Path) -> None:
    path, clock = tmp_path / "state.json", Clock()
    write_state(path, SupervisorState(down_since=clock.now, restarts=0))
    watch = EmbeddedDatabaseWatch(path, max_down_s=60, clock=clock)

    assert not watch.gave_up()
    clock.now += 60
    assert not watch.gave_up()
    clock.now += 1
    assert watch.gave_up()


def test_the_watch_trusts_what_it_read_for_a_second(tmp_path: Path) -> None:
    path, clock = tmp_path / "state.json", Clock()
    write_state(path, SupervisorState(down_since=clock.now - 100, restarts=0))
    watch = EmbeddedDatabaseWatch(path, max_down_s=60, clock=clock)
    assert watch.gave_up()

    write_state(path, SupervisorState(down_since=None, restarts=1))
    assert watch.gave_up()
    clock.now += REREAD_S
    assert not watch.gave_up()


def test_a_missing_or_broken_state_file_never_fails_liveness(tmp_path: Path) -> None:
    path, clock = tmp_path / "state.json", Clock()
    watch = EmbeddedDatabaseWatch(path, max_down_s=1, clock=clock)
    assert not watch.gave_up()

    path.write_text("{not json")
    clock.now += REREAD_S
    assert not watch.gave_up()
