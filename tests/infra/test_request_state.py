"""One typed request state per request, seen by every layer through the scope copies some
middleware make."""

from __future__ import annotations

from starlette.requests import Request

from chainconsult.infra.http import request_id_of
from chainconsult.infra.request_state import client_ip, request_state


def _scope(**extra: object) -> dict[str, object]:
    return {"type": "http", "method": "GET", "path": "/", "headers": [], **extra}


def test_a_copied_scope_shares_the_state_of_the_request() -> None:
    scope = _scope()
    outer = request_state(scope)
    inner = {**scope, "method": "GET"}  # as HEAD-as-GET and the v1 rewrite copy it
    request_state(inner).principal = principal = object()
    request_state(inner).request_id = "abc"
    assert outer.principal is principal
    assert request_id_of(scope) == "abc"


def test_each_request_gets_its_own_state() -> None:
    first, second = _scope(), _scope()
    request_state(first).client_trusted = True
    assert request_state(second).client_trusted is False
    assert request_id_of(second) is None


def test_the_client_ip_is_the_edges_else_the_peers() -> None:
    request = Request(_scope(client=("10.0.0.9", 50000)))
    assert client_ip(request) == "10.0.0.9"
    request_state(request.scope).client_ip = "203.0.113.7"
    assert client_ip(request) == "203.0.113.7"
