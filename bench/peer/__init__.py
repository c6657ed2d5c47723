"""The peer of the benchmark comparison: a typical FastAPI stack serving the same routes on the
same data as chainconsult, so one load script can measure both side by side (see README.md)."""
