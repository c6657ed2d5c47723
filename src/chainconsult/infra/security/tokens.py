"""Opaque login tokens and the CSRF token bound to them.

A login token is 32 random bytes; the server keeps only its SHA-256, so it can be revoked
(logout, erasure) and a stolen database yields nothing to replay. The CSRF token is a signed
double-submit value: ``nonce.HMAC(secret, session_id.nonce)``, so a token planted by another
site or taken from another session does not verify."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of a secret someone sent with ours. Ours are ASCII; anything
    else is simply not ours (``hmac.compare_digest`` raises TypeError on non-ASCII text)."""
    return given.isascii() and hmac.compare_digest(given, expected)


def new_csrf_token(secret: bytes, session_id: str) -> str:
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_csrf_signature(secret, session_id, nonce)}"


def csrf_token_valid(secret: bytes, session_id: str, token: str) -> bool:
    nonce, _, signature = token.partition(".")
    if not nonce or not signature or not token.isascii():
        return False
    return same_secret(signature, _csrf_signature(secret, session_id, nonce))


def _csrf_signature(secret: bytes, session_id: str, nonce: str) -> str:
    mac = hmac.new(secret, f"csrf.{session_id}.{nonce}".encode(), hashlib.sha256)
    return mac.hexdigest()
