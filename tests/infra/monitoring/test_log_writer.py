"""Log lines reach standard output in batches on the event loop (a warning at once, with
what came before it), at once off the loop, whole and in order: through a real pipe."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Iterator
from typing import IO

import pytest

from chainconsult.infra.monitoring.log_writer import BATCH_BYTES, FLUSH_SECONDS, LogWriter


@pytest.fixture
def pipe() -> Iterator[tuple[IO[str], int]]:
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(read_fd, fcntl.F_SETFL, os.O_NONBLOCK)
    writer = os.fdopen(write_fd, "w")
    yield writer, read_fd
    writer.close()
    os.close(read_fd)


def _available(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


async def test_lines_on_the_loop_wait_for_their_batch(pipe: tuple[IO[str], int]) -> None:
    stream, read_fd = pipe
    writer = LogWriter(stream)

    writer.write(b'{"n":1}\n')
    writer.write(b'{"n":2}\n')
    assert _available(read_fd) == b""
    await asyncio.sleep(FLUSH_SECONDS * 3)
    assert _available(read_fd) == b'{"n":1}\n{"n":2}\n'


async def test_a_warning_goes_at_once_with_the_lines_before_it(
    pipe: tuple[IO[str], int],
) -> None:
    stream, read_fd = pipe
    writer = LogWriter(stream)

    writer.write(b'{"n":1}\n')
    writer.write(b'{"level":"warning"}\n', urgent=True)
    assert _available(read_fd) == b'{"n":1}\n{"level":"warning"}\n'


async def test_a_full_batch_goes_at_once_in_whole_lines(pipe: tuple[IO[str], int]) -> None:
    stream, read_fd = pipe
    writer = LogWriter(stream)
    line = b'{"path":"' + b"x" * 200 + b'"}\n'

    count = 0
    while not (written := _available(read_fd)):
        writer.write(line)
        count += 1
    assert count * len(line) >= BATCH_BYTES
    assert written == line * count


def test_lines_off_the_loop_are_written_at_once(pipe: tuple[IO[str], int]) -> None:
    stream, read_fd = pipe
    writer = LogWriter(stream)

    writer.write(b'{"n":1}\n')
    assert _available(read_fd) == b'{"n":1}\n'


def test_a_line_after_its_loop_stopped_still_goes_with_the_next_loop(
    pipe: tuple[IO[str], int],
) -> None:
    stream, read_fd = pipe
    writer = LogWriter(stream)

    async def one_line(text: bytes) -> None:
        writer.write(text)

    asyncio.run(one_line(b'{"n":1}\n'))  # its loop closes before the timer fires
    asyncio.run(one_line(b'{"n":2}\n'))
    assert _available(read_fd) == b""

    async def wait() -> None:
        writer.write(b'{"n":3}\n')
        await asyncio.sleep(FLUSH_SECONDS * 3)

    asyncio.run(wait())
    assert _available(read_fd) == b'{"n":1}\n{"n":2}\n{"n":3}\n'
