"""`serve`'s server workers stop when `serve` dies, even by SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

FORKS_A_WORKER = textwrap.dedent(
    """
    import os, time
    from chainconsult.infra.parent_death import forked_children_stop_with_this_process

    assert forked_children_stop_with_this_process()
    worker = os.fork()
    if worker == 0:
        time.sleep(120)
        os._exit(0)
    print(worker, flush=True)
    time.sleep(120)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_a_forked_worker_stops_when_its_parent_is_killed() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", FORKS_A_WORKER], stdout=subprocess.PIPE, text=True
    ) as master:
        assert master.stdout is not None
        worker = psutil.Process(int(master.stdout.readline()))
        try:
            master.send_signal(signal.SIGKILL)
            master.wait(10)

            worker.wait(10)
        finally:
            if worker.is_running():
                worker.kill()
    assert not worker.is_running()
