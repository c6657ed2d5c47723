"""The declared differences between API v1 and v2, one small class per kind of difference.

Each change knows every direction it is needed in: a v1 request body or query is *up*-converted
to v2 before the one (v2) handler runs; a v2 response, error pointer and JSON schema are
*down*-converted to v1 on the way out; and it describes itself in one sentence for the migration
guide. So a difference is written once and the server, the v1 OpenAPI document and
docs/api-versions.md cannot disagree about it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from chainconsult.infra.pagination import MAX_OFFSET

JsonObject = dict[str, Any]
Direction = Literal["request", "response"]


class UpConversionError(Exception):
    """A v1 value that has no v2 equivalent: answered as a 422 problem naming the v1 field."""

    def __init__(self, name: str, message: str, *, where: Literal["body", "query"]) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.where = where


def _is_number(value: Any) -> bool:
    # bool is an int in Python but never a number in JSON.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _decimal_text(value: int | float) -> str:
    return format(Decimal(str(value)).normalize(), "f")


def _rename_property(schema: JsonObject, old: str, new: str, replacement: JsonObject) -> None:
    """Replace property ``old`` by ``new`` in place, keeping the property order and required."""
    properties: JsonObject = schema.get("properties", {})
    if old not in properties:
        return
    schema["properties"] = {
        (new if name == old else name): (replacement if name == old else value)
        for name, value in properties.items()
    }
    if old in schema.get("required", []):
        schema["required"] = [new if name == old else name for name in schema["required"]]


class FieldChange(ABC):
    """One difference in one top-level field of a JSON object."""

    @abstractmethod
    def describe(self) -> str:
        """One Markdown sentence for the migration guide."""

    @abstractmethod
    def request_up(self, body: JsonObject) -> None:
        """Turn a v1 request body into the v2 one, in place."""

    @abstractmethod
    def response_down(self, body: JsonObject) -> None:
        """Turn a v2 response object into the v1 one, in place."""

    def pointer_down(self, parts: list[str]) -> list[str]:
        """The v1 JSON pointer (as parts) of an error the v2 handler reported at ``parts``."""
        return parts

    @abstractmethod
    def schema_down(self, schema: JsonObject, direction: Direction) -> None:
        """Turn the v2 JSON schema of the object into the v1 one, in place."""


@dataclass(frozen=True, slots=True)
class RenamedField(FieldChange):
    """The same value under another name."""

    v1: str
    v2: str

    def describe(self) -> str:
        return f"`{self.v1}` is called `{self.v2}` in v2."

    def request_up(self, body: JsonObject) -> None:
        if self.v1 in body:
            body[self.v2] = body.pop(self.v1)

    def response_down(self, body: JsonObject) -> None:
        if self.v2 in body:
            body[self.v1] = body.pop(self.v2)

    def pointer_down(self, parts: list[str]) -> list[str]:
        return [self.v1, *parts[1:]] if parts[:1] == [self.v2] else parts

    def schema_down(self, schema: JsonObject, direction: Direction) -> None:
        properties = schema.get("properties", {})
        if self.v2 in properties:
            replacement = {**properties[self.v2]}
            if "title" in replacement:
                replacement["title"] = self.v1.replace("_", " ").title()
            _rename_property(schema, self.v2, self.v1, replacement)


@dataclass(frozen=True, slots=True)
class WholeMoney(FieldChange):
    """v1: a whole number of one currency's units; v2: ``{amount: "decimal", currency}``."""

    v1: str
    v2: str
    currency: str = "USD"

    def describe(self) -> str:
        v2 = "in v2" if self.v1 == self.v2 else f"is `{self.v2}` in v2,"
        return (
            f"`{self.v1}` is a whole number of {self.currency}; {v2} an object "
            f'`{{"amount": "<decimal string>", "currency": "<ISO 4217>"}}`. v1 rounds the '
            f"amount half up and shows `null` for an amount in another currency."
        )

    def request_up(self, body: JsonObject) -> None:
        if self.v1 not in body:
            return
        value = body.pop(self.v1)
        if value is None:
            body[self.v2] = None
            return
        if not isinstance(value, int) or isinstance(value, bool):
            raise UpConversionError(
                self.v1, f"must be a whole number of {self.currency}", where="body"
            )
        body[self.v2] = {"amount": str(value), "currency": self.currency}

    def response_down(self, body: JsonObject) -> None:
        if self.v2 not in body:
            return
        money = body.pop(self.v2)
        body[self.v1] = None
        if isinstance(money, dict) and money.get("currency") == self.currency:
            try:
                whole = Decimal(str(money.get("amount"))).to_integral_value(ROUND_HALF_UP)
            except InvalidOperation:
                return
            body[self.v1] = int(whole)

    def pointer_down(self, parts: list[str]) -> list[str]:
        # v2 may blame the amount or the currency inside the object; v1 has only the number.
        return [self.v1] if parts[:1] == [self.v2] else parts

    def schema_down(self, schema: JsonObject, direction: Direction) -> None:
        integer: JsonObject = {"type": "integer", "minimum": 0}
        replacement: JsonObject = (
            {
                "anyOf": [integer, {"type": "null"}],
                "description": f"Whole {self.currency}; null when priced in another currency.",
            }
            if direction == "response"
            else {**integer, "description": f"Whole {self.currency}."}
        )
        _rename_property(schema, self.v2, self.v1, replacement)


@dataclass(frozen=True, slots=True)
class RangeAsNumber(FieldChange):
    """v1: one number in one currency; v2: a range ``{min, max, currency}`` of decimal strings.
    A v1 number becomes the range [n, n]; a v2 range shows its upper bound in v1."""

    v1: str
    v2: str
    currency: str = "USD"
    maximum: Decimal | None = None
    """The largest v2 amount, documented as the v1 number's maximum."""
    step: Decimal | None = None
    """The v2 amount's smallest unit (0.01 for cents), documented as ``multipleOf``."""

    def describe(self) -> str:
        v2 = "in v2" if self.v1 == self.v2 else f"is `{self.v2}` in v2,"
        return (
            f"`{self.v1}` is one number of {self.currency}; {v2} a range "
            f'`{{"min": "<decimal>", "max": "<decimal>", "currency": "<ISO 4217>"}}`. A v1 '
            f"number is stored as min = max; v1 shows the range's `max`, or `null` for another "
            f"currency."
        )

    def request_up(self, body: JsonObject) -> None:
        if self.v1 not in body:
            return
        value = body.pop(self.v1)
        if not _is_number(value):
            raise UpConversionError(self.v1, f"must be a number of {self.currency}", where="body")
        text = _decimal_text(value)
        body[self.v2] = {"min": text, "max": text, "currency": self.currency}

    def response_down(self, body: JsonObject) -> None:
        if self.v2 not in body:
            return
        budget = body.pop(self.v2)
        body[self.v1] = None
        if isinstance(budget, dict) and budget.get("currency") == self.currency:
            try:
                upper = Decimal(str(budget.get("max")))
            except InvalidOperation:
                return
            body[self.v1] = int(upper) if upper == upper.to_integral_value() else float(upper)

    def pointer_down(self, parts: list[str]) -> list[str]:
        return [self.v1] if parts[:1] == [self.v2] else parts

    def schema_down(self, schema: JsonObject, direction: Direction) -> None:
        number: JsonObject = {"type": "number", "minimum": 0}
        # A request's number becomes a v2 amount, which must be positive and fit its digits.
        request: JsonObject = {"type": "number", "exclusiveMinimum": 0}
        if self.maximum is not None:
            request["maximum"] = float(self.maximum)
        if self.step is not None:
            request["multipleOf"] = float(self.step)
        replacement: JsonObject = (
            {
                "anyOf": [number, {"type": "null"}],
                "description": f"Upper bound in {self.currency}; null for another currency.",
            }
            if direction == "response"
            else {**request, "description": f"Amount in {self.currency}."}
        )
        _rename_property(schema, self.v2, self.v1, replacement)


@dataclass(frozen=True, slots=True)
class NewInV2(FieldChange):
    """A field v1 does not have: hidden from v1 responses; v1 requests get ``v1_value``."""

    name: str
    v1_value: Any = None
    has_v1_value: bool = False

    def describe(self) -> str:
        if self.has_v1_value:
            value = json.dumps(self.v1_value)
            return f"`{self.name}` is new in v2 (not shown in v1); v1 requests get `{value}`."
        return f"`{self.name}` is new in v2 (not shown in v1)."

    def request_up(self, body: JsonObject) -> None:
        if self.has_v1_value:
            body.setdefault(self.name, self.v1_value)

    def response_down(self, body: JsonObject) -> None:
        body.pop(self.name, None)

    def schema_down(self, schema: JsonObject, direction: Direction) -> None:
        schema.get("properties", {}).pop(self.name, None)
        if self.name in schema.get("required", []):
            schema["required"] = [name for name in schema["required"] if name != self.name]
            if not schema["required"]:
                del schema["required"]


class QueryChange(ABC):
    """A difference in the query parameters of one route."""

    @abstractmethod
    def describe(self) -> str:
        """One Markdown sentence for the migration guide."""

    @abstractmethod
    def query_up(self, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The v2 query parameters for v1's."""

    def parameter_down(self, name: str) -> str:
        """The v1 name of a query parameter the v2 handler complained about."""
        return name

    @abstractmethod
    def parameters_down(self, parameters: list[JsonObject]) -> list[JsonObject]:
        """The v1 OpenAPI parameter objects for v2's."""


def _query_parameter(name: str, schema: JsonObject, description: str) -> JsonObject:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


@dataclass(frozen=True, slots=True)
class PageNumbers(QueryChange):
    """v1: ``page`` (from 1) and ``per_page``; v2: a cursor. The v1 page is asked of the v1
    layer's own route (``V1Route.own_route``) as ``offset``/``limit`` (``NumberedOffset``),
    and ``v2_cursor`` is dropped: v1 has no cursors. v2 handlers never see an offset."""

    page: str = "page"
    per_page: str = "per_page"
    default_per_page: int = 20
    max_per_page: int = 100
    max_offset: int = MAX_OFFSET
    v2_limit: str = "limit"
    v2_offset: str = "offset"
    v2_cursor: str = "cursor"

    def describe(self) -> str:
        return (
            f"`{self.page}` (from 1) and `{self.per_page}` (default {self.default_per_page}, "
            f"at most {self.max_per_page}) are replaced in v2 by `{self.v2_limit}` and an opaque "
            f"`{self.v2_cursor}`: pass the previous page's `next_cursor` to get the next one."
        )

    @property
    def max_page(self) -> int:
        """The last page v1 serves at any page size: its rows start within the v2 offset's
        bound."""
        return self.max_offset // self.max_per_page + 1

    def _positive(self, name: str, raw: str | None, default: int, most: int) -> int:
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise UpConversionError(name, "must be a whole number", where="query") from None
        if value < 1:
            raise UpConversionError(name, "must be at least 1", where="query")
        if value > most:
            raise UpConversionError(name, f"must be at most {most}", where="query")
        return value

    def query_up(self, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
        given = dict(params)
        page = self._positive(self.page, given.get(self.page), 1, self.max_page)
        per_page = self._positive(
            self.per_page, given.get(self.per_page), self.default_per_page, self.max_per_page
        )
        own = {self.page, self.per_page, self.v2_limit, self.v2_offset, self.v2_cursor}
        kept = [(name, value) for name, value in params if name not in own]
        return [
            *kept,
            (self.v2_limit, str(per_page)),
            (self.v2_offset, str((page - 1) * per_page)),
        ]

    def parameter_down(self, name: str) -> str:
        if name == self.v2_limit:
            return self.per_page
        return self.page if name == self.v2_offset else name

    def parameters_down(self, parameters: list[JsonObject]) -> list[JsonObject]:
        own = {self.v2_limit, self.v2_offset, self.v2_cursor}
        kept = [p for p in parameters if not (p.get("in") == "query" and p.get("name") in own)]
        return [
            *kept,
            _query_parameter(
                self.page,
                {"type": "integer", "minimum": 1, "maximum": self.max_page, "default": 1},
                "Page number, from 1.",
            ),
            _query_parameter(
                self.per_page,
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_per_page,
                    "default": self.default_per_page,
                },
                "Items per page.",
            ),
        ]


@dataclass(frozen=True, slots=True)
class FixedParameter(QueryChange):
    """A v2 query parameter v1 did not have: v1 requests always get ``value`` (whatever they
    send under that name), and the v1 document does not list it."""

    name: str
    value: str
    meaning: str

    def describe(self) -> str:
        return f"v1 always means `{self.name}={self.value}` ({self.meaning}); v2 lets you choose."

    def query_up(self, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [*((k, v) for k, v in params if k != self.name), (self.name, self.value)]

    def parameters_down(self, parameters: list[JsonObject]) -> list[JsonObject]:
        return [
            p for p in parameters if not (p.get("in") == "query" and p.get("name") == self.name)
        ]
