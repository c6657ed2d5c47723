"""A header timeout for uvicorn, which has none of its own: a client that opens a connection
and then sends its request line and headers a byte at a time (slowloris) would otherwise hold
the connection, and a worker's file descriptor, for ever.

The timer runs from the moment a connection opens, and again from the first byte of each
further request on a kept-alive connection, until the headers are complete. uvicorn's own
keep-alive timeout covers the idle time between requests."""

from __future__ import annotations

import asyncio
from functools import cache

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from chainconsult.config import SecuritySettings


@cache
def header_timeout_seconds() -> float:
    # The protocol is built by uvicorn (in each worker process) from an import path, so it
    # reads its setting from the environment like the app does, once per process.
    return SecuritySettings().header_timeout_seconds


class HeaderTimeoutHttpToolsProtocol(HttpToolsProtocol):
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(header_timeout_seconds(), self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()
