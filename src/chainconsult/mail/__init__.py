"""Email the platform sends: templates for every kind of message, delivery with an
idempotency key, and the jobs that do it."""
