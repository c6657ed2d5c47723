"""The audit log: who did what to which resource, written in the acting request's transaction."""
