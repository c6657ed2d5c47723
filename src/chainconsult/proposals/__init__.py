"""Proposals: experts bid on projects; the owner accepts one and the others are declined."""
