"""OpenAPI that says what the API really answers on errors: every 4xx/5xx is an RFC 9457
``application/problem+json`` body (errors.py renders them all), not FastAPI's default
``application/json`` HTTPValidationError, so generated clients and schema checkers
(schemathesis) validate error bodies against the right shape."""

from __future__ import annotations

from typing import Any

from chainconsult.infra.http import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; extension members may follow.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "URI naming the kind of problem."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": ["string", "null"]},
        "instance": {"type": ["string", "null"]},
        "request_id": {"type": ["string", "null"], "description": "Quote it when reporting."},
        "errors": {
            "type": "array",
            "description": "One entry per invalid field (validation problems only).",
            "items": {"type": "object"},
        },
    },
    "additionalProperties": True,
}
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status, response in responses.items():
                # A route that declares an error answer of its own (a page's text/html login
                # form, a health document typed as an object) answers it itself; FastAPI's
                # JSON error shapes and undeclared contents are the problem handlers' answers.
                content = response.get("content", {})
                declared = "type" in content.get("application/json", {}).get("schema", {})
                error = str(status)[0] in {"4", "5"}
                if error and set(content) <= {"application/json"} and not declared:
                    response["content"] = dict(_PROBLEM_CONTENT)
            # Any status not listed (401, 403, 413, 429, ...) is a problem too.
            responses.setdefault(
                "default", {"description": "Problem details", "content": dict(_PROBLEM_CONTENT)}
            )
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def problem_responses(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=``: each error status it may answer with the problem types
    (slugs) it means; ``document_problems`` gives each the problem+json body."""
    return {status: {"description": text} for status, text in described.items()}
