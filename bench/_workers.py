"""Which processes of an ASGI server serve its requests, for the benchmarks that measure or
kill them: granian's workers are forked from the server process (same command line), uvicorn's
are started with multiprocessing's spawn (``spawn_main`` in theirs); uvicorn with one worker
serves in the server process itself."""

from __future__ import annotations

import contextlib

import psutil


def server_worker_pids(pid: int) -> list[int]:
    try:
        server = psutil.Process(pid)
        command = server.cmdline()
        children = server.children()
    except psutil.Error:
        return []
    workers = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            line = child.cmdline()
            if line == command or any("spawn_main" in part for part in line):
                workers.append(child.pid)
    return workers or [pid]
