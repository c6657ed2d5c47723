"""Passwords, tokens, request limits and (later) CORS, CSRF, headers and IP filtering."""
