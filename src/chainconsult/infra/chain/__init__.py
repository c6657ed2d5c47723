"""The chain adapter: a JSON-RPC client (rpc.py) and an event follower that applies a
contract's confirmed logs exactly once and undoes what a reorganisation removed
(follower.py), with the tables it keeps (models.py). Knows nothing of any domain.

Import from the submodules: this package is imported for its tables by every process, and
web3 must stay out of the API workers (decision 0034)."""
