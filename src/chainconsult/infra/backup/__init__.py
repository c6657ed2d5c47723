"""Backups and restores of the database: consistent logical dumps (pg_dump of the server's
major version) to a directory or S3, optionally encrypted with age, each with a manifest;
restore drills; point-in-time recovery from an operator's base backups and WAL archive; the
scheduled job and its retention. docs/disaster-recovery.md tells operators how to use them."""
