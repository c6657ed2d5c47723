"""Errors that carry their own HTTP status and problem type (RFC 9457). They live in infra so
that infra can raise them too (a bad cursor, a lost commit); chainconsult.errors re-exports
them with the handlers that turn them into responses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class ChainconsultError(Exception):
    """Base of every error a user may see; subclasses set the status and a problem type."""

    status_code: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions


class BadRequest(ChainconsultError):
    status_code = 400
    slug = "bad-request"
    title = "Bad request"


class Unauthorized(ChainconsultError):
    status_code = 401
    slug = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str = "Log in to use this resource.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="chainconsult"'})
        super().__init__(detail, **kw)


class Forbidden(ChainconsultError):
    status_code = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFound(ChainconsultError):
    status_code = 404
    slug = "not-found"
    title = "Not found"


class Conflict(ChainconsultError):
    status_code = 409
    slug = "conflict"
    title = "Conflict"


class PayloadTooLarge(ChainconsultError):
    status_code = 413
    slug = "payload-too-large"
    title = "Request body too large"


class UnsupportedMediaType(ChainconsultError):
    status_code = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class InvalidInput(ChainconsultError):
    """A well-formed request whose values break a rule; ``errors`` says which field."""

    status_code = 422
    slug = "validation-error"
    title = "Invalid input"

    def __init__(self, detail: str, *, errors: Sequence[Mapping[str, Any]] = (), **kw: Any):
        super().__init__(detail, errors=[dict(error) for error in errors], **kw)


class TooManyRequests(ChainconsultError):
    status_code = 429
    slug = "rate-limited"
    title = "Too many requests"


class ServiceUnavailable(ChainconsultError):
    status_code = 503
    slug = "service-unavailable"
    title = "Service unavailable"


class CommitOutcomeUnknown(ServiceUnavailable):
    """The connection broke while the database was committing: the change may or may not
    be stored, so it is never replayed automatically. No Retry-After: the caller should look
    before repeating a write that is not idempotent."""

    slug = "commit-outcome-unknown"
    title = "Outcome unknown"

    def __init__(
        self,
        detail: str = "The database connection was lost while saving; the change may or may "
        "not have been stored. Check before repeating it.",
        **kw: Any,
    ) -> None:
        super().__init__(detail, **kw)


def field_error(field: str, message: str, kind: str = "value_error") -> dict[str, Any]:
    """One item of ``errors[]``: a JSON pointer into the request body plus a message."""
    return {"pointer": f"#/{field.replace('.', '/')}", "detail": message, "type": kind}
