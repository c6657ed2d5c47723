"""One OpenAPI document per version. v2's is the application's own, without the v1 paths; v1's
is derived from it by the same declared changes that convert requests and responses, so it
lists only v1 shapes (``...V1`` schemas) and cannot drift from what the server does."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from chainconsult.infra.docs_pages import swagger_page
from chainconsult.infra.http import JSONResponse
from chainconsult.infra.openapi_problems import document_problems
from chainconsult.infra.versioning.changes import Direction, JsonObject
from chainconsult.infra.versioning.lifecycle import MIGRATION_GUIDE_PATH, V1Lifecycle
from chainconsult.infra.versioning.surface import (
    V1_PREFIX,
    ListShape,
    ObjectShape,
    V1Route,
    V1Surface,
)

_REF = "#/components/schemas/"
V1_OPENAPI_PATH = V1_PREFIX + "/openapi.json"
V1_DOCS_PATH = V1_PREFIX + "/docs"
DOCS_PASSTHROUGH: dict[str, str | None] = {
    "/openapi.json": "/api/v2/openapi.json",
    "/docs": "/api/v2/docs",
    "/migration-guide": None,
}
"""v1 paths served by this module itself (below the v1 prefix) and their v2 successors."""


def _is_v1(path: str) -> bool:
    return path == V1_PREFIX or path.startswith(V1_PREFIX + "/")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            yield ref[len(_REF) :]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _reachable(paths: JsonObject, schemas: JsonObject) -> JsonObject:
    """The schemas ``paths`` refer to, directly or through other schemas, in sorted order."""
    seen: set[str] = set()
    pending = list(_refs(paths))
    while pending:
        name = pending.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        pending.extend(_refs(schemas[name]))
    return {name: schemas[name] for name in sorted(seen)}


def _document(full: JsonObject, title: str, description: str, paths: JsonObject) -> JsonObject:
    components = full.get("components", {})
    document: JsonObject = {
        "openapi": full["openapi"],
        "info": {**full["info"], "title": title, "description": description},
        "paths": paths,
    }
    schemas = _reachable(paths, components.get("schemas", {}))
    new_components: JsonObject = {}
    if schemas:
        new_components["schemas"] = schemas
    if "securitySchemes" in components:
        new_components["securitySchemes"] = components["securitySchemes"]
    if new_components:
        document["components"] = new_components
    return document


class _V1Builder:
    def __init__(self, full: JsonObject) -> None:
        self.full = full
        self.schemas: JsonObject = copy.deepcopy(full.get("components", {}).get("schemas", {}))

    def derive(self, schema: JsonObject, shape: ObjectShape, direction: Direction) -> JsonObject:
        """The v1 form of ``schema`` (a $ref or an inline object), as a new ``...V1`` schema."""
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith(_REF):
            inline = copy.deepcopy(schema)
            shape.schema_down(inline, direction)
            return inline
        name = ref[len(_REF) :]
        derived = copy.deepcopy(self.schemas[name])
        shape.schema_down(derived, direction)
        new_name = name.removesuffix("-Input").removesuffix("-Output") + "V1"
        derived["title"] = new_name
        if new_name in self.schemas and self.schemas[new_name] != derived:
            new_name += "Input" if direction == "request" else "Output"
            derived["title"] = new_name
        self.schemas[new_name] = derived
        return {"$ref": _REF + new_name}

    def list_schema(self, schema: JsonObject, shape: ListShape) -> JsonObject:
        envelope = schema
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            envelope = self.schemas[ref[len(_REF) :]]
        items = envelope.get("properties", {}).get(shape.items_key, {}).get("items", {})
        return {"type": "array", "items": self.derive(items, shape.item, "response")}

    def operation(self, route: V1Route, lifecycle: V1Lifecycle) -> JsonObject:
        item = self.full["paths"].get(route.v2_template, {})
        source = item.get(route.method.lower())
        if source is None:
            raise LookupError(
                f"v1 route {route.method} {route.template} is declared on "
                f"{route.method} {route.v2_template}, which the application does not serve"
            )
        operation: JsonObject = copy.deepcopy(source)
        operation["operationId"] = f"{operation.get('operationId', route.template)}_v1"
        operation["deprecated"] = True
        operation["description"] = (
            f"{operation.get('description', '')}\n\nDeprecated: served until "
            f"{lifecycle.sunset}; use `{route.method} {route.v2_template}`."
        ).strip()
        if route.query:
            parameters: list[JsonObject] = operation.get("parameters", [])
            for change in route.query:
                parameters = change.parameters_down(parameters)
            operation["parameters"] = parameters
        # Unchanged bodies get their own ...V1 schema too: the v1 document names only v1 shapes.
        request = route.request or ObjectShape()
        if "requestBody" in operation:
            for media in operation["requestBody"].get("content", {}).values():
                media["schema"] = self.derive(media.get("schema", {}), request, "request")
        for status, response in operation.get("responses", {}).items():
            if not str(status).startswith("2"):
                continue
            for media in response.get("content", {}).values():
                schema = media.get("schema", {})
                if isinstance(route.response, ListShape):
                    media["schema"] = self.list_schema(schema, route.response)
                    response.setdefault("headers", {})[route.response.total_header] = {
                        "description": "How many items all pages hold together.",
                        "schema": {"type": "integer", "minimum": 0},
                    }
                else:
                    shape = route.response or ObjectShape()
                    media["schema"] = self.derive(schema, shape, "response")
        return operation


def build_documents(
    app: FastAPI, surface: V1Surface, lifecycle: V1Lifecycle
) -> tuple[JsonObject, JsonObject]:
    """(v1 document, v2 document)."""
    # Errors documented as problem+json in both versions (v1 errors keep that format).
    full = document_problems(
        get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            servers=app.servers,
        )
    )
    v2_paths = {path: item for path, item in full["paths"].items() if not _is_v1(path)}
    v2 = _document(
        full,
        f"{app.title} API v2",
        "The current API. Older clients: see /api/v1/docs and the migration guide at "
        f"{MIGRATION_GUIDE_PATH}.",
        v2_paths,
    )
    builder = _V1Builder(full)
    v1_paths: JsonObject = {
        path: copy.deepcopy(item) for path, item in full["paths"].items() if _is_v1(path)
    }
    for route in surface.routes:
        v1_paths.setdefault(route.template, {})[route.method.lower()] = builder.operation(
            route, lifecycle
        )
    v1 = _v1_names(
        _document(
            {**full, "components": {**full.get("components", {}), "schemas": builder.schemas}},
            f"{app.title} API v1 (deprecated)",
            f"Deprecated since {lifecycle.deprecated_at:%Y-%m-%d}; served until "
            f"{lifecycle.sunset}. Every response carries Deprecation, Sunset and a Link to "
            f"its v2 successor. Migration guide: {MIGRATION_GUIDE_PATH}.",
            dict(sorted(v1_paths.items())),
        )
    )
    return v1, v2


def _v1_names(document: JsonObject) -> JsonObject:
    """Every schema of the v1 document named ``...V1``, also the ones v1 shares unchanged
    with v2 (enums, nested objects): a v1 client's generated code never meets a v2 name."""
    schemas: JsonObject = document.get("components", {}).get("schemas", {})
    names = {name: name if name.endswith("V1") else f"{name}V1" for name in schemas}

    def renamed(node: Any) -> Any:
        if isinstance(node, dict):
            out = {key: renamed(value) for key, value in node.items()}
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF) and ref[len(_REF) :] in names:
                out["$ref"] = _REF + names[ref[len(_REF) :]]
            return out
        if isinstance(node, list):
            return [renamed(value) for value in node]
        return node

    document = renamed(document)
    if schemas:
        document["components"]["schemas"] = {
            names[name]: {**schema, "title": names[name]}
            for name, schema in document["components"]["schemas"].items()
        }
    return document


def install_version_docs(
    app: FastAPI, surface: V1Surface, lifecycle: V1Lifecycle, guide: Callable[[], str]
) -> None:
    """Serve the v1 OpenAPI document, its docs page and the migration guide, and make the
    application's own (v2) document leave out the v1 paths."""
    cache: dict[str, JsonObject] = {}

    def documents() -> dict[str, JsonObject]:
        if not cache:
            cache["v1"], cache["v2"] = build_documents(app, surface, lifecycle)
        return cache

    app.openapi = lambda: documents()["v2"]  # type: ignore[method-assign]

    @app.get(V1_OPENAPI_PATH, include_in_schema=False)
    async def v1_openapi() -> Response:
        return JSONResponse(documents()["v1"])

    @app.get(V1_DOCS_PATH, include_in_schema=False)
    async def v1_docs(request: Request) -> HTMLResponse:
        return swagger_page(
            title=f"{app.title} API v1 (deprecated)", root_path=request.scope.get("root_path", "")
        )

    @app.get(MIGRATION_GUIDE_PATH, include_in_schema=False)
    async def migration_guide() -> Response:
        return Response(guide(), media_type="text/markdown; charset=utf-8")
