"""The suite's own scheduling (tests/conftest.py): modules with a slow test run first, and
each part keeps its random order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from tests.conftest import pytest_collection_modifyitems


@dataclass
class _Item:
    name: str
    path: Path
    slow: bool = False

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "slow" and self.slow else None


def test_modules_with_a_slow_test_run_first_each_part_in_its_order() -> None:
    fast, mixed, other = Path("test_fast.py"), Path("test_mixed.py"), Path("test_other.py")
    items = [
        _Item("fast-1", fast),
        _Item("mixed-1", mixed),
        _Item("other-1", other),
        _Item("mixed-2", mixed, slow=True),
        _Item("fast-2", fast),
    ]

    pytest_collection_modifyitems(cast(list[pytest.Item], items))

    assert [item.name for item in items] == ["mixed-1", "mixed-2", "fast-1", "other-1", "fast-2"]
