"""Fixtures of the infrastructure tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.edge_support import ServerProcess

StartServers = Callable[[Mapping[str, str], int], list[ServerProcess]]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[StartServers]:
    """Start `chainconsult serve` processes with ``servers(env, count)``; all are stopped
    after the test."""
    started: list[ServerProcess] = []

    def start(env: Mapping[str, str], count: int = 1) -> list[ServerProcess]:
        batch = [
            ServerProcess(env, tmp_path / f"server-{len(started) + i}.log") for i in range(count)
        ]
        for server in batch:
            started.append(server)
            server.start()
        return batch

    yield start
    for server in started:
        server.stop()
