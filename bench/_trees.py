"""Running a benchmark's measuring child against another source tree (``--baseline-src``):
the child is this very script, with the other tree's package first on the path."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence


def child_in_tree(module: str, src: str | None, env: dict[str, str], args: Sequence[str]) -> str:
    """Run ``python -m module --child *args`` (with ``src``'s package, or this tree's when
    None) and return the last line it printed: the child's result."""
    child_env = dict(env)
    if src is not None:
        # The other tree's package is found first; bench/ (for this script) stays ours.
        child_env["PYTHONPATH"] = os.pathsep.join([src, env["PYTHONPATH"]])
    done = subprocess.run(
        [sys.executable, "-m", module, "--child", *args],
        env=child_env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"a measuring process failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]
