"""What API v1 is: its routes, each mapped onto the v2 route that serves it, with the declared
changes of its query, request body and response. Domains declare their v1 routes (in their own
``versions.py``); the composition root hands the whole list to the middleware, the OpenAPI
builder and the migration guide."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chainconsult.infra.versioning.changes import (
    Direction,
    FieldChange,
    JsonObject,
    QueryChange,
)

V1_PREFIX = "/api/v1"
V2_PREFIX = "/api/v2"
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class ObjectShape:
    """A JSON object whose v1 form differs from v2's by ``changes`` (in order)."""

    changes: tuple[FieldChange, ...] = ()

    def up(self, body: JsonObject) -> None:
        for change in self.changes:
            change.request_up(body)

    def down(self, body: JsonObject) -> None:
        for change in self.changes:
            change.response_down(body)

    def pointer_down(self, parts: list[str]) -> list[str]:
        for change in self.changes:
            parts = change.pointer_down(parts)
        return parts

    def schema_down(self, schema: JsonObject, direction: Direction) -> None:
        for change in self.changes:
            change.schema_down(schema, direction)

    def describe(self) -> list[str]:
        return [change.describe() for change in self.changes]


@dataclass(frozen=True, slots=True)
class ListShape:
    """v2 answers ``{items_key: [...], next_cursor, total_key?}``; v1 a bare array of
    ``item``-shaped objects, with the total count in the ``total_header`` response header."""

    item: ObjectShape
    items_key: str = "data"
    total_key: str = "total"
    total_header: str = "X-Total-Count"

    def down(self, body: Any) -> tuple[Any, dict[str, str]]:
        if not isinstance(body, dict) or not isinstance(body.get(self.items_key), list):
            return body, {}
        items = body[self.items_key]
        for item in items:
            if isinstance(item, dict):
                self.item.down(item)
        total = body.get(self.total_key)
        headers = {self.total_header: str(total)} if isinstance(total, int) else {}
        return items, headers

    def describe(self) -> list[str]:
        return [
            f'v2 wraps the list: `{{"{self.items_key}": [...], "next_cursor": ...}}`; v1 '
            f"answers a bare array and the total in the `{self.total_header}` header.",
            *(f"Each item: {line}" for line in self.item.describe()),
        ]


ResponseShape = ObjectShape | ListShape


@dataclass(frozen=True, slots=True)
class V1Route:
    """One v1 endpoint, served by the v2 route at ``v2_path`` (default: the same path), or
    by a route of the v1 layer's own (``own_route``)."""

    method: str
    path: str
    """Below the version prefix, with ``{name}`` path parameters: ``/experts/{expert_id}``."""
    v2_path: str | None = None
    own_route: bool = False
    """Served by a hidden route of the v1 layer at the v1 path itself (``/api/v1/...``), for
    what v2 does not offer (numbered pages): v2 handlers never see v1's parameters. Its
    document is still derived from the v2 route at ``v2_path``, the documented successor."""
    query: tuple[QueryChange, ...] = ()
    request: ObjectShape | None = None
    response: ResponseShape | None = None
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts: list[str] = []
        last = 0
        for param in _PARAM.finditer(self.path):
            parts.append(re.escape(self.path[last : param.start()]))
            parts.append(f"(?P<{param.group(1)}>[^/]+)")
            last = param.end()
        parts.append(re.escape(self.path[last:]))
        object.__setattr__(self, "_pattern", re.compile("".join(parts)))

    @property
    def template(self) -> str:
        return V1_PREFIX + self.path

    @property
    def v2_template(self) -> str:
        return V2_PREFIX + (self.v2_path or self.path)

    def match(self, path: str) -> dict[str, str] | None:
        found = self._pattern.fullmatch(path)
        return found.groupdict() if found else None

    def v2_path_for(self, params: Mapping[str, str]) -> str:
        return _PARAM.sub(lambda m: params[m.group(1)], self.v2_template)

    def parameter_down(self, name: str) -> str:
        for change in self.query:
            name = change.parameter_down(name)
        return name

    def pointer_down(self, parts: list[str]) -> list[str]:
        return self.request.pointer_down(parts) if self.request is not None else parts


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: V1Route
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class V1Surface:
    """Every v1 route, plus the v1 paths served as they are (``passthrough``: v1 path below the
    prefix -> its v2 successor, or None), such as the v1 health format and the v1 docs."""

    routes: tuple[V1Route, ...]
    passthrough: Mapping[str, str | None] = field(default_factory=dict)

    @classmethod
    def of(
        cls, routes: Iterable[V1Route], passthrough: Mapping[str, str | None] | None = None
    ) -> V1Surface:
        return cls(tuple(routes), dict(passthrough or {}))

    def match(self, method: str, path: str) -> RouteMatch | list[str] | None:
        """The route for ``path`` (below the v1 prefix); else the methods the path allows
        (empty when no route has the path)."""
        allowed: list[str] = []
        for route in self.routes:
            params = route.match(path)
            if params is None:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return RouteMatch(route, params)
            allowed.append(route.method)
        return allowed or None
