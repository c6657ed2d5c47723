"""The v1 side of a v1 request: its JSON body converted up to v2 before the handler, and the
handler's answer converted back down (a list's page headers, problem pointers) on its way out,
as the declared changes say (surface.py). Used by the versioning middleware."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import Message, Send

from chainconsult.infra.versioning.surface import ListShape, V1Route

RawHeaders = list[tuple[bytes, bytes]]


def header(headers: RawHeaders, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def convert_request(route: V1Route, body: bytes) -> bytes:
    """The v2 body for a v1 one. Bodies that are not JSON objects go through unchanged: the
    v2 handler rejects them with its usual 400 or 422."""
    assert route.request is not None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(data, dict):
        return body
    route.request.up(data)
    return orjson.dumps(data)


class V1Responder:
    """The ``send`` of a v1 request: adds the v1 headers, and converts the bodies a declared
    change applies to (buffering only those)."""

    __slots__ = ("_chunks", "_mode", "_start", "headers", "path", "route", "send")

    def __init__(self, send: Send, route: V1Route, headers: RawHeaders, path: str) -> None:
        self.send = send
        self.route = route
        self.headers = headers
        self.path = path
        self._start: Message | None = None
        self._chunks: list[bytes] = []
        self._mode: Callable[[Any], tuple[Any, RawHeaders]] | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._mode = self._converter(message)
            if self._mode is None:
                message["headers"] = [*message.get("headers", ()), *self.headers]
                await self.send(message)
            else:
                self._start = message
            return
        if message["type"] != "http.response.body" or self._start is None:
            await self.send(message)
            return
        self._chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body, extra = self._convert(b"".join(self._chunks))
        start, self._start = self._start, None
        headers = [(k, v) for k, v in start.get("headers", ()) if k != b"content-length"]
        headers += [(b"content-length", str(len(body)).encode()), *self.headers, *extra]
        await self.send({**start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})

    def _converter(self, start: Message) -> Callable[[Any], tuple[Any, RawHeaders]] | None:
        content_type = (header(list(start.get("headers", ())), b"content-type") or b"").lower()
        if content_type.startswith(b"application/problem+json"):
            return self._problem_down
        status: int = start["status"]
        if (
            self.route.response is not None
            and 200 <= status < 300
            and content_type.startswith(b"application/json")
        ):
            return self._response_down
        return None

    def _convert(self, raw: bytes) -> tuple[bytes, RawHeaders]:
        assert self._mode is not None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw, []
        converted, extra = self._mode(data)
        return orjson.dumps(converted), extra

    def _response_down(self, data: Any) -> tuple[Any, RawHeaders]:
        shape = self.route.response
        if isinstance(shape, ListShape):
            items, headers = shape.down(data)
            return items, [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        if shape is not None and isinstance(data, dict):
            shape.down(data)
        return data, []

    def _problem_down(self, data: Any) -> tuple[Any, RawHeaders]:
        if not isinstance(data, dict):
            return data, []
        # The v2 handler saw the v2 path; the caller asked for the v1 one.
        data["instance"] = self.path
        for error in data.get("errors") or ():
            if not isinstance(error, dict):
                continue
            pointer = error.get("pointer")
            if isinstance(pointer, str) and pointer.startswith("#/"):
                parts = self.route.pointer_down(pointer[2:].split("/"))
                error["pointer"] = "#/" + "/".join(parts)
            if error.get("in") == "query" and isinstance(error.get("parameter"), str):
                error["parameter"] = self.route.parameter_down(error["parameter"])
        return data, []
