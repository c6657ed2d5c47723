"""The connectives of a rule written once and evaluated two ways: on plain values in Python,
or as a SQL expression a statement decides by. A domain writes its rule as a function of
its facts and a ``Logic``; comparisons (``==``, ``!=``) already work on both kinds of facts,
so only and, or and not need an implementation per kind."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import and_, not_, or_


class Logic(Protocol):
    def all(self, *terms: Any) -> Any: ...
    def any(self, *terms: Any) -> Any: ...
    def negate(self, term: Any) -> Any: ...


class _Python:
    def all(self, *terms: Any) -> bool:
        return all(bool(term) for term in terms)

    def any(self, *terms: Any) -> bool:
        return any(bool(term) for term in terms)

    def negate(self, term: Any) -> bool:
        return not term


class _Sql:
    def all(self, *terms: Any) -> Any:
        return and_(*terms)

    def any(self, *terms: Any) -> Any:
        return or_(*terms)

    def negate(self, term: Any) -> Any:
        return not_(term)


PYTHON: Logic = _Python()
"""Facts are values; the rule returns a ``bool``."""
SQL: Logic = _Sql()
"""Facts are column expressions and bound parameters; the rule returns a SQL condition."""
