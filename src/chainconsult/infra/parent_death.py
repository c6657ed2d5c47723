"""Server workers stop when the `serve` process that forked them dies.

granian (2.8) has no such option: a worker whose master was killed with SIGKILL kept serving,
holding the port, the data dir's lock and its database connections, with nobody left to stop
it. Linux sends a signal of our choice to a process when its parent dies (prctl
PR_SET_PDEATHSIG); set in every child forked from here on, it makes a worker stop as on any
SIGTERM: it finishes its requests, closes its pools and exits. Five lines of ctypes rather than
a dependency: the packages wrapping prctl are unmaintained or need libcap to build. Elsewhere
(macOS) nothing is set."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
"""From <linux/prctl.h>."""

_installed_for: int | None = None
_forked_by: int | None = None
"""The pid of the process that made the latest fork, as its child sees it."""


def forked_children_stop_with_this_process(sig: signal.Signals = signal.SIGTERM) -> bool:
    """Every child this process forks from now on gets ``sig`` when this process dies.
    Returns whether the platform supports it. Idempotent per process."""
    global _installed_for
    if not sys.platform.startswith("linux"):
        return False
    if _installed_for == os.getpid():
        return True
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)

    def before_fork() -> None:
        global _forked_by
        _forked_by = os.getpid()

    def in_child() -> None:
        if _forked_by != parent:
            return  # forked by a child (the hooks are inherited): not ours to tie
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        # The parent may have died between the fork and the prctl call.
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    os.register_at_fork(before=before_fork, after_in_child=in_child)
    _installed_for = parent
    return True
