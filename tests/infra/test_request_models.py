"""Request bodies are strict: a JSON value must already have the type the OpenAPI document
declares. The table is built from both documents, so a field added later is held to it too."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, get_args

from httpx import AsyncClient
from pydantic import BaseModel

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.infra.request_models import RequestModel
from tests.market import admin, application_body
from tests.test_routes import _api_routes

JsonObject = dict[str, Any]

WRONG_VALUES: dict[str, list[Any]] = {
    # `1.5` is wrong for an integer; `1.0` is not (JSON Schema: the same number as 1).
    "integer": [True, "1", 1.5],
    "number": [True, "1"],
    "boolean": [1, "true"],
    # Also dates, UUIDs, emails, URLs, enum values and decimal amounts: all JSON strings.
    "string": [True, 1],
}


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    pointer: str
    body: JsonObject

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.pointer} = {self.body!r}"


def _resolve(document: JsonObject, schema: JsonObject) -> JsonObject:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    branches = [branch for branch in schema.get("anyOf", []) if branch != {"type": "null"}]
    if len(branches) == 1:
        return _resolve(document, branches[0])
    return schema


def _nested(pointer: list[str], value: Any) -> Any:
    """``value`` placed at ``pointer`` (object keys, ``0`` for an array item)."""
    for part in reversed(pointer):
        value = [value] if part == "0" else {part: value}
    return value


def _wrong_fields(document: JsonObject, schema: JsonObject, at: list[str]) -> Iterator[Any]:
    schema = _resolve(document, schema)
    kind = schema.get("type")
    if kind == "object":
        for name, field in schema.get("properties", {}).items():
            yield from _wrong_fields(document, field, [*at, name])
    elif kind == "array":
        yield from _wrong_fields(document, schema["items"], [*at, "0"])
    elif kind in WRONG_VALUES or "enum" in schema:
        for value in WRONG_VALUES[kind or "string"]:
            yield at, value


def wrong_type_cases(document: JsonObject) -> list[Case]:
    cases = []
    for template, item in document["paths"].items():
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), template)
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            schema = content["application/json"]["schema"]
            for pointer, value in _wrong_fields(document, schema, []):
                body = _nested(pointer, value)
                cases.append(Case(method.upper(), path, "#/" + "/".join(pointer), body))
    return cases


async def test_every_request_body_field_refuses_a_json_value_of_another_type(
    client: AsyncClient, database_url: str
) -> None:
    headers = await admin(client, database_url)
    cases = [
        case
        for version in ("v1", "v2")
        for case in wrong_type_cases((await client.get(f"/api/{version}/openapi.json")).json())
    ]

    refused_elsewhere = []
    for case in cases:
        response = await client.request(case.method, case.path, json=case.body, headers=headers)
        problem = response.json()
        blamed = [
            error
            for error in problem.get("errors", [])
            if error.get("pointer") == case.pointer and error.get("type") != "missing"
        ]
        if response.status_code != 422 or not blamed:
            refused_elsewhere.append(f"{case} -> {response.status_code} {response.text[:300]}")

    assert refused_elsewhere == []
    pointers = {(case.path.split("/")[2], case.pointer) for case in cases}
    # The table reaches nested objects, arrays and v1 bodies, not only top-level fields.
    assert {
        ("v2", "#/estimated_days"),
        ("v2", "#/price/amount"),
        ("v2", "#/skills/0"),
        ("v2", "#/deadline"),
        ("v1", "#/budget"),
        ("v1", "#/title"),
    } <= pointers
    assert len(cases) > 100


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    """Every pydantic model inside ``annotation``, nested fields included."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for field in annotation.model_fields.values():
            yield from _models(field.annotation)
    for argument in get_args(annotation):
        yield from _models(argument)


def test_every_request_body_is_a_strict_request_model(settings: Settings) -> None:
    models = {
        model
        for route in _api_routes(create_app(settings).router.routes)
        for body in route.dependant.body_params
        for model in _models(body.field_info.annotation)
    }

    assert {model.__name__ for model in models} >= {"ProposalRequest", "Money", "Budget"}
    assert sorted(m.__name__ for m in models if not issubclass(m, RequestModel)) == []


async def test_integer_fields_take_a_whole_json_number(
    client: AsyncClient, database_url: str
) -> None:
    headers = await admin(client, database_url)

    applied = await client.post(
        "/api/v2/expert-applications",
        json=application_body(years_experience=6.0),
        headers=headers,
    )

    assert applied.status_code == 201, applied.text
    assert applied.json()["years_experience"] == 6


async def test_money_amounts_are_decimal_strings_as_documented(
    client: AsyncClient, database_url: str
) -> None:
    headers = await admin(client, database_url)
    document = (await client.get("/api/v2/openapi.json")).json()
    pattern = document["components"]["schemas"]["Money-Input"]["properties"]["amount"]["pattern"]

    for amount in (150, 150.5, "150.001", "0.00", "1e3", " 150", "12345678901"):
        if isinstance(amount, str):
            assert re.fullmatch(pattern, amount) is None, amount  # the document refuses it too
        refused = await client.post(
            "/api/v2/expert-applications",
            json=application_body(hourly_rate={"amount": amount, "currency": "USD"}),
            headers=headers,
        )
        assert refused.status_code == 422, (amount, refused.text)
        assert [e["pointer"] for e in refused.json()["errors"]] == ["#/hourly_rate/amount"]

    assert re.fullmatch(pattern, "0.05") is not None
    applied = await client.post(
        "/api/v2/expert-applications",
        json=application_body(hourly_rate={"amount": "0.05", "currency": "USD"}),
        headers=headers,
    )
    assert applied.status_code == 201, applied.text
    assert applied.json()["hourly_rate"] == {"amount": "0.05", "currency": "USD"}


async def test_query_integers_refuse_true(client: AsyncClient) -> None:
    for path, parameter in (
        ("/api/v2/experts?limit=true", "limit"),
        ("/api/v1/experts?per_page=true", "per_page"),
        ("/api/v1/experts?page=true", "page"),
    ):
        response = await client.get(path)

        assert response.status_code == 422, (path, response.text)
        assert [e["parameter"] for e in response.json()["errors"]] == [parameter]


async def test_partial_update_documents_no_null_it_would_refuse(
    client: AsyncClient, database_url: str
) -> None:
    headers = await admin(client, database_url)
    document = (await client.get("/api/v2/openapi.json")).json()
    update = document["components"]["schemas"]["ProjectUpdate"]["properties"]

    assert [name for name, field in update.items() if "null" in str(field)] == []
    response = await client.patch(
        f"/api/v2/projects/{uuid.uuid4()}", json={"budget": None}, headers=headers
    )
    assert response.status_code == 422


async def test_dates_are_iso_text_never_unix_timestamps(
    client: AsyncClient, database_url: str
) -> None:
    headers = await admin(client, database_url)
    project = {
        "title": "Audit our lending pool",
        "description": "Two contracts, about 900 lines of Solidity in total.",
        "chains": ["ethereum"],
        "skills": ["solidity"],
        "budget": {"min": "1000", "max": "2000", "currency": "USD"},
    }

    for deadline in (1893456000, "1893456000"):
        body = {**project, "deadline": deadline}
        response = await client.post("/api/v2/projects", json=body, headers=headers)
        assert response.status_code == 422, (deadline, response.text)
        assert [e["pointer"] for e in response.json()["errors"]] == ["#/deadline"]
    for until in ("0.5", "1893456000"):
        response = await client.get(
            "/api/v2/admin/audit-log", params={"until": until}, headers=headers
        )
        assert response.status_code == 422, (until, response.text)
        assert [e["parameter"] for e in response.json()["errors"]] == ["until"]
    listed = await client.get(
        "/api/v2/admin/audit-log", params={"until": "2030-01-01T00:00:00Z"}, headers=headers
    )
    assert listed.status_code == 200, listed.text
