"""The limiter leans on parts of `limits` that are not its public API (decision 0012): the
Redis storage's ``bridge``, the text of its two sliding-window scripts (pasted into
``DECIDE_LUA``) and its window key names. pyproject.toml pins `limits` below the next minor
version; these tests fail loudly on any version where those parts differ, so that raising
the pin means reading the new scripts first."""

from __future__ import annotations

import hashlib
import inspect
from importlib.metadata import version

import pytest
from limits import parse
from limits.aio.storage import RedisStorage

from chainconsult.infra.ratelimit.decide_script import DECIDE_LUA, script_text

# sha256 of the script text in limits 5.8: a new text must be read, checked against
# DECIDE_LUA's use of it (KEYS, ARGV, the reply) and its hash copied here.
SCRIPTS = {
    "lua_acquire_sliding_window": (
        "3a1548d4c00dfe04fdd8feabfb60849afcb5caf4158d8082671588c5f5d871e6"
    ),
    "lua_sliding_window": "a86dd8837d03ab9e10a5151c47d00eaca4396dd262698a4269c4e6e8ac5b96f7",
}


@pytest.fixture
def storage() -> RedisStorage:
    # Nothing connects until a command is sent: the address is never dialled.
    return RedisStorage("redis://127.0.0.1:1", implementation="redispy", key_prefix="cc")


def test_the_installed_limits_is_the_one_the_limiter_was_written_against() -> None:
    assert version("limits").startswith("5.8."), version("limits")


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_the_sliding_window_scripts_are_unchanged(storage: RedisStorage, name: str) -> None:
    script = getattr(storage.bridge, name)
    text = script_text(script)
    assert hashlib.sha256(text.encode()).hexdigest() == SCRIPTS[name], (
        f"limits changed {name}: re-read it against DECIDE_LUA (infra/ratelimit/limiter.py)"
    )
    # What DECIDE_LUA passes as the local function's parameters.
    assert "KEYS[1]" in text
    assert "KEYS[2]" in text
    assert "ARGV[1]" in text


def test_the_window_keys_are_named_as_the_limiter_names_them(storage: RedisStorage) -> None:
    item_key = parse("10/minute").key_for("203.0.113.9")
    bridge = storage.bridge
    assert bridge.prefixed_key(storage._current_window_key(item_key)) == f"cc:{{{item_key}}}"
    assert bridge.prefixed_key(storage._previous_window_key(item_key)) == f"cc:{{{item_key}}}/-1"


def test_the_bridge_hands_out_the_client_the_script_is_registered_on(
    storage: RedisStorage,
) -> None:
    assert list(inspect.signature(storage.bridge.get_connection).parameters) == ["readonly"]
    assert callable(storage.bridge.get_connection().register_script)
    # Both scripts fit the template's placeholders.
    assert "{acquire}" in DECIDE_LUA
    assert "{window}" in DECIDE_LUA
