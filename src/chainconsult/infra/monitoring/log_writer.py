"""Log lines to standard output in batches: one write per batch instead of one write and
flush per line (docs/decisions/0033-access-log-fast-path.md).

On the event loop a line waits at most ``FLUSH_SECONDS``, or until the batch nears
``BATCH_BYTES``; a warning or an error flushes at once, with everything before it. Off the
loop (the CLI, other threads) every line is written at once. A batch is one ``write`` of
whole lines below PIPE_BUF, so lines of several worker processes sharing one pipe never
interleave mid-line. Pending lines are written at exit (logging's own shutdown flushes every
handler) and by ``flush``."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import IO

BATCH_BYTES = 3584
"""Below PIPE_BUF (4096 on Linux): a pipe write of this size is atomic."""
FLUSH_SECONDS = 0.05


class LogWriter:
    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        try:
            stream.flush()
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            # A stream without a file descriptor (a test's capture): written as text.
            self._fd = None
        self._pending: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def write(self, line: bytes, *, urgent: bool = False) -> None:
        """``line`` (ending in a newline), now or with the next batch."""
        loop = asyncio._get_running_loop()
        with self._lock:
            self._pending.append(line)
            self._size += len(line)
            if urgent or loop is None or self._size >= BATCH_BYTES:
                self._flush_locked()
            elif self._timer is None or self._timer_loop is not loop:
                # (A timer of another loop, stopped since, would never fire.)
                self._timer = loop.call_later(FLUSH_SECONDS, self.flush)
                self._timer_loop = loop

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        try:
            if self._fd is None:
                self._stream.write(data.decode())
                self._stream.flush()
                return
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except (OSError, ValueError):
            # Standard output gone (a closed pipe): the lines are lost, the request is not.
            pass


class BatchedStreamHandler(logging.Handler):
    """logging's StreamHandler, through a LogWriter."""

    def __init__(self, writer: LogWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.writer.write(
            line.encode("utf-8", "backslashreplace") + b"\n",
            urgent=record.levelno >= logging.WARNING,
        )

    def flush(self) -> None:
        self.writer.flush()
