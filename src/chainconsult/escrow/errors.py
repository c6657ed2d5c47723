"""The escrow's problems (DESIGN.md, Escrow): each carries its status and slug."""

from __future__ import annotations

from chainconsult.errors import Conflict, ServiceUnavailable


class EscrowNotConfigured(ServiceUnavailable):
    slug = "escrow-not-configured"
    title = "Escrow not configured"

    def __init__(self) -> None:
        super().__init__(
            "Escrow payments are not set up on this platform (ESCROW_RPC_URL, ESCROW_CONTRACT "
            "and ESCROW_TOKENS)."
        )


class WalletUnverified(Conflict):
    slug = "wallet-unverified"
    title = "Payout wallet not verified"


class MilestoneState(Conflict):
    slug = "milestone-state"
    title = "Milestone in the wrong state"
