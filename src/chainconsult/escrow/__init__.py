"""Milestone payments held in the on-chain escrow contract (contracts/Escrow.sol)."""
