"""Keyset (cursor) pagination: the cursor is an opaque base64url token carrying the sort key
and the id of the last row served, so the next page starts strictly after it. Unlike OFFSET,
rows inserted between two requests can neither repeat nor push a row out of the next page."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, Field

from chainconsult.infra.http_errors import BadRequest

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


TOTAL_COUNT_HEADER = "X-Total-Count"
MAX_OFFSET = 1_000_000
"""The deepest numbered page start (API v1's pages): OFFSET reads and drops every row before."""
NumberedOffset = Annotated[
    int,
    Query(
        ge=0,
        le=MAX_OFFSET,
        description="Rows to skip: API v1's page numbers, made an offset by the v1 layer "
        "(infra/versioning, PageNumbers). Answers with the total in X-Total-Count.",
    ),
]
"""The numbered-page entry of the v1 layer's own list routes (``V1Route.own_route``); v2
pages by cursor only and has no offset."""


class Page(BaseModel, Generic[T]):
    """One page of a list: the items and the cursor of the next page (null on the last)."""

    data: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to get the next page; null when there is none."
    )


P = TypeVar("P", bound=Page[Any])


def encode_cursor(kind: str, *values: Any) -> str:
    """An opaque token for the position after a row; ``kind`` names the sort it belongs to."""
    raw = orjson.dumps([kind, *[str(value) for value in values]])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(token: str, kind: str, *parsers: Callable[[str], Any]) -> list[Any]:
    """The values :func:`encode_cursor` packed, each turned back into its type by the parser in
    its position; a 400 problem for anything else, including a cursor of another sort order."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = orjson.loads(raw)
        if (
            isinstance(decoded, list)
            and len(decoded) == len(parsers) + 1
            and decoded[0] == kind
            and all(isinstance(value, str) for value in decoded)
        ):
            return [parse(value) for parse, value in zip(parsers, decoded[1:], strict=True)]
    except (binascii.Error, ValueError, ArithmeticError, orjson.JSONDecodeError):
        pass
    raise BadRequest(
        "The cursor is malformed or belongs to another query; start again without it.",
        parameter="cursor",
    )


@dataclass(frozen=True, slots=True)
class Keyset(Generic[R]):
    """One sort order of a list: ``kind`` names it in its cursors, ``position`` gives a row's
    sort key (the values a repository compares with ``tuple_(...) > after``), ``parsers``
    read them back. The one way a service pages::

        rows = await repository.page(..., after=ORDER.after(cursor), limit=limit + 1)
        return ORDER.page(Page[Item], rows, limit, Item.model_validate)
    """

    kind: str
    position: Callable[[R], Sequence[Any]]
    parsers: tuple[Callable[[str], Any], ...]

    def after(self, cursor: str | None) -> tuple[Any, ...] | None:
        """The position the page starts after, or None for the first page."""
        if cursor is None:
            return None
        return tuple(decode_cursor(cursor, self.kind, *self.parsers))

    def page(
        self, page_type: type[P], rows: Sequence[R], limit: int, item: Callable[[R], Any]
    ) -> P:
        """The page of ``rows`` read with ``limit + 1``: the extra row only says there is a
        next page, whose cursor is the last served row's position."""
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(self.kind, *self.position(rows[limit - 1]))
        return page_type(data=[item(row) for row in rows[:limit]], next_cursor=next_cursor)


def created_position(row: Any) -> tuple[str, uuid.UUID]:
    return (row.created_at.isoformat(), row.id)


def by_creation(
    kind: str, position: Callable[[Any], Sequence[Any]] = created_position
) -> Keyset[Any]:
    """The usual order: a timestamp, then the id that breaks ties."""
    return Keyset(kind, position, (dt.datetime.fromisoformat, uuid.UUID))
