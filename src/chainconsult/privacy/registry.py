"""Which tables hold personal data, and how each is exported and erased.

One entry per table. A table added later that references ``accounts`` must register here
(tests/privacy fails for any such table that does not), so export and erasure cover it:

    personal_data.register(
        PersonalTable("alerts", owners=("acknowledged_by",), erase=set_null("alerts",
        "acknowledged_by"))
    )

Erasers run in registration order, inside the erasing request's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Eraser = Callable[[AsyncSession, uuid.UUID], Awaitable[None]]
Parameters = Callable[[AsyncSession, uuid.UUID], Awaitable[dict[str, object]]]


def _ident(name: str) -> str:
    # Names come from this registry, never from a request; quoting keeps odd ones working.
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class PersonalTable:
    table: str
    owners: tuple[str, ...]
    """Columns holding the id of the account a row is about."""
    erase: Eraser
    hidden: frozenset[str] = field(default_factory=frozenset)
    """Columns left out of the export (secrets such as password or token hashes)."""
    also_about: str | None = None
    """Extra SQL condition (alias ``t``, the account id as ``:id``) for rows that name the
    account without a foreign key, e.g. audit entries whose resource is the account."""
    parameters: Parameters | None = None
    """Further values ``also_about`` binds, computed in Python for the account."""
    others_hidden: frozenset[str] = field(default_factory=frozenset)
    """Columns left out of the rows found only by ``also_about`` (someone else's row about
    the account, such as an admin's audit entry): that person's data, not the account's."""


class PersonalDataRegistry:
    def __init__(self) -> None:
        self._tables: dict[str, PersonalTable] = {}

    def register(self, entry: PersonalTable) -> None:
        self._tables[entry.table] = entry

    def tables(self) -> list[PersonalTable]:
        return list(self._tables.values())

    async def export(self, session: AsyncSession, account_id: uuid.UUID) -> dict[str, list[object]]:
        """Every registered table's rows about the account, as JSON objects."""
        result: dict[str, list[object]] = {}
        for entry in self._tables.values():
            conditions = [f"t.{_ident(column)} = :id" for column in entry.owners]
            if entry.also_about is not None:
                conditions.append(f"({entry.also_about})")
            condition = " OR ".join(conditions)
            hidden = "".join(f" - '{column}'" for column in sorted(entry.hidden))
            row = f"to_jsonb(t){hidden}"
            if entry.others_hidden:
                theirs = "".join(f" - '{column}'" for column in sorted(entry.others_hidden))
                owned = " OR ".join(f"t.{_ident(column)} = :id" for column in entry.owners)
                row = f"CASE WHEN {owned or 'false'} THEN {row} ELSE {row}{theirs} END"
            values: dict[str, object] = {"id": account_id}
            if entry.parameters is not None:
                values.update(await entry.parameters(session, account_id))
            rows = await session.execute(
                text(f"SELECT {row} FROM {_ident(entry.table)} t WHERE {condition}"),  # noqa: S608
                values,
            )
            result[entry.table] = [row[0] for row in rows]
        return result

    async def erase(self, session: AsyncSession, account_id: uuid.UUID) -> None:
        for entry in self._tables.values():
            await entry.erase(session, account_id)


def delete_rows(table: str, column: str) -> Eraser:
    """Erase by deleting every row whose ``column`` is the account."""

    async def erase(session: AsyncSession, account_id: uuid.UUID) -> None:
        await session.execute(
            text(f"DELETE FROM {_ident(table)} WHERE {_ident(column)} = :id"),  # noqa: S608
            {"id": account_id},
        )

    return erase


def set_null(table: str, column: str, *also: str) -> Eraser:
    """Erase the link (and ``also`` columns) but keep the row, for rows others still need."""

    async def erase(session: AsyncSession, account_id: uuid.UUID) -> None:
        assignments = ", ".join(f"{_ident(name)} = NULL" for name in (column, *also))
        await session.execute(
            text(f"UPDATE {_ident(table)} SET {assignments} WHERE {_ident(column)} = :id"),  # noqa: S608
            {"id": account_id},
        )

    return erase


personal_data = PersonalDataRegistry()
