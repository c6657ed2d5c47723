"""Which API version a request asks for: by URL (``/api/v1/...``, ``/api/v2/...``), else, on the
unversioned ``/api/...``, by the ``API-Version`` header or the vendor media type in ``Accept``;
default the current version. The URL wins over headers: it names the resource."""

from __future__ import annotations

import re
from dataclasses import dataclass

SUPPORTED = (1, 2)
CURRENT = 2
VERSION_HEADER = b"api-version"
_VERSIONED_PATH = re.compile(r"/api/v([0-9]+)(?=/|$)")
_HEADER_VALUE = re.compile(r"[0-9]{1,3}")
_VENDOR_TYPE = re.compile(r"application/vnd\.chainconsult\.v([0-9]+)\+json", re.IGNORECASE)


class VersionError(Exception):
    """The request names a version that is malformed or not served."""


@dataclass(frozen=True, slots=True)
class Negotiated:
    version: int
    rest: str
    """The path below the version prefix (``/experts/1``), "" for the prefix itself."""
    by_url: bool


def supported_text() -> str:
    return ", ".join(str(version) for version in SUPPORTED)


def _checked(digits: str, source: str) -> int:
    # Three digits at most: int() refuses more than 4,300, and no version will need four.
    version = int(digits) if len(digits) <= 3 else None
    if version not in SUPPORTED:
        raise VersionError(
            f"API version {digits[:10]} ({source}) is not served; supported versions: "
            f"{supported_text()}."
        )
    return version


def negotiate(path: str, headers: list[tuple[bytes, bytes]]) -> Negotiated:
    """``path`` starts with ``/api``. Raises VersionError for an unknown or malformed one."""
    versioned = _VERSIONED_PATH.match(path)
    if versioned is not None:
        version = _checked(versioned.group(1), "in the URL")
        return Negotiated(version, path[versioned.end() :], by_url=True)
    rest = path[len("/api") :]
    header: bytes | None = None
    accept: bytes | None = None
    for name, value in headers:
        if name == VERSION_HEADER:
            if header is not None:
                raise VersionError(
                    f"Send one API-Version header; supported versions: {supported_text()}."
                )
            header = value
        elif name == b"accept":
            accept = value if accept is None else accept + b"," + value
    if header is not None:
        text = header.decode("latin-1").strip()
        if not _HEADER_VALUE.fullmatch(text):
            raise VersionError(
                f"API-Version must be a version number such as 2, not {text[:40]!r}; "
                f"supported versions: {supported_text()}."
            )
        return Negotiated(_checked(text, "in API-Version"), rest, by_url=False)
    if accept is not None and b"vnd.chainconsult" in accept.lower():
        vendor = _VENDOR_TYPE.search(accept.decode("latin-1"))
        if vendor is None:
            raise VersionError(
                "Accept names a chainconsult media type without a version; use "
                f"application/vnd.chainconsult.v2+json. Supported versions: {supported_text()}."
            )
        return Negotiated(_checked(vendor.group(1), "in Accept"), rest, by_url=False)
    return Negotiated(CURRENT, rest, by_url=False)
