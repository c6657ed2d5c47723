"""A request without Origin takes the CORS middleware's short path; its answer must be the one
Starlette's CORSMiddleware gives, header for header."""

from __future__ import annotations

import pytest
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainconsult.infra.security.cors import ExactOriginCORSMiddleware

ORIGINS = ["https://app.example"]


def _app(headers: list[tuple[bytes, bytes]]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


async def _answer(middleware: ASGIApp, request_headers: list[tuple[bytes, bytes]]) -> list[Message]:
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/v2/experts",
        "headers": request_headers,
        "query_string": b"",
    }
    await middleware(scope, receive, send)
    return messages


@pytest.mark.parametrize(
    "response_headers",
    [
        [(b"content-type", b"application/json")],
        [(b"vary", b"Accept-Encoding"), (b"content-type", b"application/json")],
        [(b"vary", b"Accept"), (b"etag", b'"abc"'), (b"vary", b"Authorization, Cookie")],
    ],
)
@pytest.mark.parametrize(
    "request_headers",
    [[], [(b"accept", b"*/*")], [(b"origin", b"https://app.example")], [(b"origin", b"x")]],
)
async def test_answers_are_starlettes_header_for_header(
    response_headers: list[tuple[bytes, bytes]], request_headers: list[tuple[bytes, bytes]]
) -> None:
    ours = ExactOriginCORSMiddleware(_app(response_headers), allowed_origins=ORIGINS, max_age=600)
    theirs = CORSMiddleware(
        _app(response_headers),
        allow_origins=ORIGINS,
        allow_methods=["GET"],
        allow_credentials=True,
        expose_headers=list(
            ours.simple_headers.get("Access-Control-Expose-Headers", "").split(", ")
        ),
    )
    ours_answer = await _answer(ours, request_headers)
    theirs_answer = await _answer(theirs, request_headers)
    if request_headers == [(b"origin", b"x")]:
        # An unlisted origin: ours leaves out what Starlette still sends (module docstring).
        assert (b"access-control-allow-credentials", b"true") in theirs_answer[0]["headers"]
        assert not any(name.startswith(b"access-control") for name, _ in ours_answer[0]["headers"])
        return
    assert ours_answer == theirs_answer
    assert [value for name, value in ours_answer[0]["headers"] if name == b"vary"][-1].endswith(
        b"Origin"
    )
