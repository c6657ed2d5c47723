"""The supervisor's policy: restart a dead embedded PostgreSQL at once, then with growing
delays, and report the outage to the server workers. The server here is a stand-in whose
restarts fail on demand; tests/test_serve_embedded.py kills the real one under `serve`."""

from __future__ import annotations

from pathlib import Path

from chainconsult.infra.embedded.postgres import EmbeddedDatabaseError
from chainconsult.infra.embedded.state import SupervisorState, read_state
from chainconsult.infra.embedded.supervisor import POLL_S, STABLE_S, PostgresSupervisor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class StandInServer:
    """Runs until ``die()``; then each restart fails while ``failures_left`` lasts."""

    def __init__(self, tmp_path: Path) -> None:
        self.pgdata = tmp_path / "pgdata"
        self.pid = 4242
        self.up = True
        self.failures_left = 0
        self.restarts = 0

    def running(self) -> bool:
        return self.up

    def die(self, *, failing_restarts: int = 0) -> None:
        self.up, self.failures_left = False, failing_restarts

    def ensure_running(self) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise EmbeddedDatabaseError("the previous server process has not exited yet")
        self.up = True
        self.restarts += 1


def supervised(tmp_path: Path) -> tuple[StandInServer, PostgresSupervisor, Clock, Path]:
    server, clock, state = StandInServer(tmp_path), Clock(), tmp_path / "state.json"
    supervisor = PostgresSupervisor(server, state, clock=clock)  # type: ignore[arg-type]
    supervisor._publish()  # what start() writes before its thread looks at the server
    return server, supervisor, clock, state


def test_a_running_server_is_only_looked_at(tmp_path: Path) -> None:
    server, supervisor, _, state = supervised(tmp_path)

    assert [supervisor.tick() for _ in range(3)] == [POLL_S] * 3
    assert server.restarts == 0
    assert read_state(state) == SupervisorState(down_since=None, restarts=0)


def test_a_dead_server_is_restarted_at_once_then_after_growing_delays(tmp_path: Path) -> None:
    server, supervisor, clock, state = supervised(tmp_path)
    server.die(failing_restarts=5)
    went_down = clock.now

    delays = []
    for _ in range(5):
        delays.append(supervisor.tick())
        assert read_state(state) == SupervisorState(down_since=went_down, restarts=0)
        clock.now += delays[-1]
    back = supervisor.tick()

    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert back == POLL_S
    assert server.running()
    assert read_state(state) == SupervisorState(down_since=None, restarts=1)


def test_the_delay_between_restarts_stops_growing_at_ten_seconds(tmp_path: Path) -> None:
    server, supervisor, _, _ = supervised(tmp_path)
    server.die(failing_restarts=8)

    delays = [supervisor.tick() for _ in range(8)]

    assert delays[-3:] == [10.0, 10.0, 10.0]


def test_a_server_dying_again_soon_after_a_restart_continues_the_same_outage(
    tmp_path: Path,
) -> None:
    """A crash loop must reach /livez's limit like one long outage."""
    server, supervisor, clock, state = supervised(tmp_path)
    first_outage = clock.now
    server.die(failing_restarts=1)
    supervisor.tick()
    supervisor.tick()
    clock.now += STABLE_S / 2
    server.die(failing_restarts=1)

    assert supervisor.tick() == 1.0  # the backoff goes on from where it was
    assert read_state(state) == SupervisorState(down_since=first_outage, restarts=1)


def test_an_outage_long_after_a_restart_is_a_new_one(tmp_path: Path) -> None:
    server, supervisor, clock, state = supervised(tmp_path)
    server.die()
    supervisor.tick()
    clock.now += STABLE_S + 1
    server.die(failing_restarts=1)

    assert supervisor.tick() == 0.5
    assert read_state(state) == SupervisorState(down_since=clock.now, restarts=1)
