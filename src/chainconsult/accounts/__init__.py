"""Accounts: registration, login sessions, plans and roles."""
