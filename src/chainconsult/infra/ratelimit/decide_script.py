"""The one Redis script that decides a batch of rate-limit requests (made of `limits`' own
sliding-window scripts), how a batch is packed and sent, and how a quota's state is read back
from its reply (docs/decisions/0012-one-rate-limit-script-per-decision.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hiredis import pack_command

from chainconsult.infra.ratelimit.policies import Quota, QuotaState, whole_seconds

# A call decides a batch of requests (batching.py), one after another, as separate calls would.
# KEYS: per decision, its penalty key, then each of its quotas' previous and current window keys.
# ARGV: the number of decisions; then per decision its number of quotas, then each quota's limit,
# window seconds and cost.
# Reply: per decision, a list: the penalty's TTL, then per quota: acquired (1 or 0) and the
# window after it (previous count, previous TTL ms, current count, current TTL ms).
DECIDE_LUA = """
local function acquire(KEYS, ARGV)
{acquire}
end
local function window(KEYS, ARGV)
{window}
end
local replies = {{}}
local k, a = 1, 2
for d = 1, tonumber(ARGV[1]) do
    local quotas = tonumber(ARGV[a])
    a = a + 1
    local reply = {{redis.call('ttl', KEYS[k])}}
    for i = 1, quotas do
        local keys = {{KEYS[k + 2 * i - 1], KEYS[k + 2 * i]}}
        local limit, expiry, cost = ARGV[a], ARGV[a + 1], ARGV[a + 2]
        a = a + 3
        reply[#reply + 1] = acquire(keys, {{limit, expiry, cost}}) and 1 or 0
        local counts = window(keys, {{expiry}})
        for j = 1, 4 do
            reply[#reply + 1] = tonumber(counts[j]) or 0
        end
    end
    k = k + 1 + 2 * quotas
    replies[d] = reply
end
return replies
"""


@dataclass(frozen=True, slots=True)
class ScriptRequest:
    """One decision's part of a script call: its keys and arguments, as ``DECIDE_LUA`` reads
    them."""

    keys: list[str]
    arguments: list[Any]


async def execute_packed(client: Any, command: tuple[Any, ...]) -> Any:
    """``client.execute_command(*command)`` for the decision script, packed by hiredis (C).

    Written here because redis-py's asyncio connection packs commands in Python, argument by
    argument: a batch of decisions has hundreds of arguments, and packing them was about 5 % of
    a cached read's CPU (docs/decisions/0013-rate-limit-group-commit.md). What
    ``execute_command`` adds beyond that is left out on purpose: its retries (the limiter
    falls back to memory on the first failure instead) and its reply callbacks (EVALSHA has
    none). A connection whose exchange was cut short (a timeout, a lost connection, a
    cancelled request) is closed by the connection's own send and read before it goes back to
    the pool, so no later command reads this one's reply (tested in
    tests/infra/ratelimit/test_decide_script.py)."""
    pool = client.connection_pool
    connection = await pool.get_connection()
    try:
        await connection.send_packed_command(pack_command(command), check_health=False)
        return await connection.read_response()
    finally:
        await pool.release(connection)


def script_text(script: Any) -> str:
    text = script.script
    return text.decode() if isinstance(text, bytes) else str(text)


def state_from_window(quota: Quota, window: Any) -> QuotaState:
    """Remaining units and seconds to reset from `limits`' sliding-window script result
    (previous count, previous TTL ms, current count, current TTL ms), computed as
    ``SlidingWindowCounterRateLimiter.get_window_stats`` does."""
    expiry = quota.window
    previous_count = int(window[0] or 0) if window else 0
    previous_ttl = max(0.0, float(window[1] or 0)) / 1000 if window else 0.0
    current_count = int(window[2] or 0) if window else 0
    current_ttl = max(0.0, float(window[3] or 0)) / 1000 if window else 0.0
    weighted = previous_count * previous_ttl / expiry + current_count
    remaining = max(0, quota.quota - math.floor(weighted))
    if not (previous_count or current_count):
        return QuotaState(quota, remaining, expiry)
    resets = []
    if previous_count:
        resets.append(previous_ttl % (expiry / previous_count))
    if current_count:
        resets.append(current_ttl % expiry)
    return QuotaState(quota, remaining, whole_seconds(min(resets)) or expiry)
