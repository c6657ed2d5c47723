"""Request bodies are read as written: a JSON value must already have the declared type.

FastAPI validates the parsed body as Python data, where pydantic's default (lax) mode would
take `true` or `"5"` for the integer 5 and a number for a date. Strict mode refuses every such
coercion. Fields opt back in where JSON has no type of their own: ``FromText`` for UUIDs and
enum values, ``FromIsoText`` for dates (also in query strings, where a number would be read as
a Unix timestamp), and ``JsonInt`` for integers, which JSON Schema (and so the OpenAPI
document) lets a client write as ``5.0``. Money amounts are decimal strings by their own type
(``chainconsult.experts.vocabulary.Amount``). Query parameters are otherwise text by nature
and keep FastAPI's parsing."""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

T = TypeVar("T")


class RequestModel(BaseModel):
    """The base of every request body and of every object nested in one."""

    model_config = ConfigDict(strict=True, extra="forbid")


def _text(value: Any) -> Any:
    # A JSON number or boolean is never a UUID, date or enum value here (lax mode would read
    # 1893456000 as the date 2030-01-01). Values built in Python (instances) pass on.
    if isinstance(value, bool | int | float):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    return value


FromText = Annotated[T, Strict(False), BeforeValidator(_text)]
"""A value JSON carries as a string (UUID, enum value), parsed from that string inside a strict
model; numbers and booleans stay refused."""

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_text(value: Any) -> Any:
    # pydantic would read a number, or a string of digits, as a Unix timestamp.
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise PydanticCustomError(
            "iso_8601", "Input should be an ISO 8601 date (2026-01-31) or date-time"
        )
    return _text(value)


FromIsoText = Annotated[T, Strict(False), BeforeValidator(_iso_text)]
"""A date or date-time, from its ISO 8601 text only (also in a query string)."""


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


JsonInt = Annotated[int, Strict(False), BeforeValidator(_number)]
"""An integer as JSON Schema means one: ``5`` or ``5.0`` (the same JSON number), never ``true``
or ``"5"``, nor ``5.5``."""


_NULL: JsonDict = {"type": "null"}


def omit_instead_of_null(schema: JsonDict) -> None:
    """``json_schema_extra`` of a partial update whose fields may be omitted but not nulled:
    the schema offers no null branch (nor a null default) that the validator would refuse."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    for field in properties.values():
        if not isinstance(field, dict):
            continue
        branches = field.get("anyOf")
        if isinstance(branches, list) and _NULL in branches:
            kept = [branch for branch in branches if branch != _NULL]
            del field["anyOf"]
            if len(kept) == 1 and isinstance(kept[0], dict):
                field.update(kept[0])
            else:
                field["anyOf"] = kept
        if "default" in field and field["default"] is None:
            del field["default"]
