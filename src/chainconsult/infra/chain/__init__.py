"""The chain adapter: a JSON-RPC client (rpc.py) and an event follower that applies a
contract's confirmed logs exactly once and undoes what a reorganisation removed
(follower.py). Knows nothing of any domain."""

from chainconsult.infra.chain.follower import AppliedEvent, EventFollower, EventHandler
from chainconsult.infra.chain.rpc import ChainClient, ChainUnavailable

__all__ = ["AppliedEvent", "ChainClient", "ChainUnavailable", "EventFollower", "EventHandler"]
