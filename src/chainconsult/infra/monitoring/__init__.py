"""Logging, request context and (later) metrics and alerting."""
