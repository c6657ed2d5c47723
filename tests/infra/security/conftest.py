"""Fixtures of these tests."""

from tests.edge_support import servers

__all__ = ["servers"]
