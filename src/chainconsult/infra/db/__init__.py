"""PostgreSQL access: the engine, the per-request transaction and migrations."""
