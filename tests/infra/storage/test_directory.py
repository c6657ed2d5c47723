"""The file stores' shared rules: a key never leaves the root, and a write that fails leaves
neither a half-written object nor its partial file."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainconsult.infra.storage.directory import KeyOutsideRoot, path_inside, written_aside


def test_a_key_cannot_leave_the_root(tmp_path: Path) -> None:
    assert path_inside(tmp_path, "a/b.txt") == (tmp_path / "a" / "b.txt").resolve()
    for key in ("../escape.txt", "a/../../escape.txt", "/etc/passwd"):
        with pytest.raises(KeyOutsideRoot):
            path_inside(tmp_path, key)


def test_a_write_lands_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "object.bin"
    with written_aside(target) as partial:
        partial.write_bytes(b"whole")
        assert not target.exists()
    assert target.read_bytes() == b"whole"

    def fail_halfway() -> None:
        with written_aside(target) as partial:
            partial.write_bytes(b"half")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        fail_halfway()
    assert target.read_bytes() == b"whole"
    assert sorted(p.name for p in target.parent.iterdir()) == ["object.bin"]
