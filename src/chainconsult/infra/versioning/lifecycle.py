"""The headers that tell a v1 caller its version is going away: ``Deprecation`` (RFC 9745, an
sf-date), ``Sunset`` (RFC 8594, an HTTP-date) and ``Link`` to the v2 successor and to the
migration guide. Computed once per process; only the successor link depends on the request,
and it is percent-encoded: a header value built from a path must stay ASCII whatever the
client put in the path."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from email.utils import format_datetime
from urllib.parse import quote

import http_sf

from chainconsult.infra.settings.v1_lifecycle import VersioningSettings

MIGRATION_GUIDE_PATH = "/api/v1/migration-guide"
# What RFC 3986 allows unencoded in a path besides unreserved characters; everything else
# (non-ASCII, "<", ">", quotes, spaces, control characters) is percent-encoded as UTF-8, so
# the URI can neither break the Link syntax nor fail to encode.
_PATH_SAFE = "/!$&'()*+,;=:@"


@dataclass(frozen=True, slots=True)
class V1Lifecycle:
    deprecated_at: dt.datetime
    sunset_at: dt.datetime
    guide_url: str = MIGRATION_GUIDE_PATH
    _fixed: list[tuple[bytes, bytes]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Serialised once: every v1 response sends the same two values.
        object.__setattr__(
            self,
            "_fixed",
            [(b"deprecation", self.deprecation.encode()), (b"sunset", self.sunset.encode())],
        )

    @classmethod
    def from_settings(cls, settings: VersioningSettings) -> V1Lifecycle:
        return cls(deprecated_at=settings.deprecated_at(), sunset_at=settings.sunset_at())

    @property
    def deprecation(self) -> str:
        # http_sf serialises a datetime as an sf-date: "@<unix seconds>".
        return http_sf.ser(self.deprecated_at.astimezone(dt.UTC).replace(microsecond=0))

    @property
    def sunset(self) -> str:
        return format_datetime(self.sunset_at.astimezone(dt.UTC), usegmt=True)

    def link(self, successor: str | None) -> str:
        """``successor`` is a decoded path (as ASGI gives it), encoded here into a URI."""
        guide = f'<{self.guide_url}>; rel="deprecation"; type="text/markdown"'
        if successor is None:
            return guide
        return f'<{quote(successor, safe=_PATH_SAFE)}>; rel="successor-version", {guide}'

    def headers(self, successor: str | None) -> list[tuple[bytes, bytes]]:
        return [*self._fixed, (b"link", self.link(successor).encode("ascii"))]
