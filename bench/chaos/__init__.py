"""Chaos scenarios: faults injected into private PostgreSQL, Redis, job workers and server
workers under load, with the damage counted. Run with `python -m bench.chaos`."""
