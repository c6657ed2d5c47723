"""EXPLAIN the very statements a repository sends: run the call with a listener that captures
each statement and its parameters, then ask PostgreSQL for the plan of each."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.helpers import statements_sent


@dataclass
class Plan:
    statement: str
    root: dict[str, Any]

    def nodes(self) -> Iterator[dict[str, Any]]:
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(node.get("Plans", []))

    def indexes(self) -> set[str]:
        return {node["Index Name"] for node in self.nodes() if "Index Name" in node}

    def seq_scanned(self) -> set[str]:
        return {node["Relation Name"] for node in self.nodes() if node["Node Type"] == "Seq Scan"}

    def sorts(self) -> int:
        return sum(1 for node in self.nodes() if node["Node Type"] in {"Sort", "Incremental Sort"})

    def __str__(self) -> str:
        return f"{self.statement}\n{json.dumps(self.root, indent=1)}"


async def plans_of(
    engine: AsyncEngine,
    call: Callable[[AsyncSession], Awaitable[Any]],
) -> list[Plan]:
    """Run ``call`` in a session that is rolled back, and EXPLAIN each SELECT it sent."""
    maker = async_sessionmaker(engine, expire_on_commit=False)
    with statements_sent(engine) as sent:
        async with maker() as session:
            await call(session)
            await session.rollback()
    selects = [
        (statement, parameters)
        for statement, parameters in sent
        if statement.lstrip().upper().startswith(("SELECT", "WITH"))
    ]
    plans: list[Plan] = []
    async with engine.connect() as conn:
        for statement, parameters in selects:
            result = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
            document = result.scalar_one()
            plans.append(Plan(statement, document[0]["Plan"]))
    return plans
