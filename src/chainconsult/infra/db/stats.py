"""What `chainconsult db-stats` reports: table sizes, index use, maintenance hints and the
slowest statements. Read from PostgreSQL's statistics views, which cost nothing to keep; the
hints are rules of thumb an operator acts on, not verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.infra.db.statement_timing import server_slowest_statements

_TABLES = text(
    """
    SELECT n.nspname AS schema, c.relname AS name,
           pg_total_relation_size(c.oid) AS total_bytes,
           pg_relation_size(c.oid) AS table_bytes,
           pg_indexes_size(c.oid) AS index_bytes,
           coalesce(s.n_live_tup, 0) AS live_rows,
           coalesce(s.n_dead_tup, 0) AS dead_rows,
           coalesce(s.seq_scan, 0) AS seq_scans,
           coalesce(s.idx_scan, 0) AS index_scans,
           greatest(s.last_vacuum, s.last_autovacuum) AS last_vacuum,
           greatest(s.last_analyze, s.last_autoanalyze) AS last_analyze
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%'
    ORDER BY total_bytes DESC, name
    """
)
_INDEXES = text(
    """
    SELECT s.schemaname AS schema, s.relname AS table, s.indexrelname AS name,
           s.idx_scan AS scans, pg_relation_size(s.indexrelid) AS bytes,
           i.indisunique AS is_unique, i.indisprimary AS is_primary
    FROM pg_stat_user_indexes s
    JOIN pg_index i ON i.indexrelid = s.indexrelid
    ORDER BY s.idx_scan, bytes DESC, name
    """
)

# Thresholds of the hints.
DEAD_ROW_SHARE = 0.2
DEAD_ROWS_MIN = 1_000
SEQ_SCAN_ROWS_MIN = 10_000
UNUSED_INDEX_BYTES_MIN = 1024 * 1024


@dataclass
class DatabaseStats:
    tables: list[dict[str, Any]]
    indexes: list[dict[str, Any]]
    slowest: list[dict[str, Any]] | None
    """None when pg_stat_statements is not available on the server."""
    autovacuum: bool = True
    hints: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tables": self.tables,
            "indexes": self.indexes,
            "slowest_statements": self.slowest,
            "autovacuum": self.autovacuum,
            "hints": self.hints,
        }


async def collect_database_stats(engine: AsyncEngine, *, limit: int = 10) -> DatabaseStats:
    async with engine.connect() as conn:
        tables = [dict(row) for row in (await conn.execute(_TABLES)).mappings()]
        indexes = [dict(row) for row in (await conn.execute(_INDEXES)).mappings()]
        autovacuum = (await conn.execute(text("SHOW autovacuum"))).scalar() == "on"
    for table in tables:
        for key in ("last_vacuum", "last_analyze"):
            if table[key] is not None:
                table[key] = table[key].isoformat()
    slowest = await server_slowest_statements(engine, limit)
    stats = DatabaseStats(tables=tables, indexes=indexes, slowest=slowest, autovacuum=autovacuum)
    stats.hints = maintenance_hints(stats)
    return stats


def maintenance_hints(stats: DatabaseStats) -> list[str]:
    hints: list[str] = []
    if not stats.autovacuum:
        hints.append(
            "autovacuum is off: dead rows, stale statistics and GIN pending lists pile up (the "
            "planner then avoids the full-text and array indexes); turn it on, or schedule "
            "VACUUM (ANALYZE)"
        )
    for table in stats.tables:
        name = f"{table['schema']}.{table['name']}"
        live, dead = table["live_rows"], table["dead_rows"]
        if dead >= DEAD_ROWS_MIN and dead / max(live + dead, 1) >= DEAD_ROW_SHARE:
            share = round(100 * dead / (live + dead))
            hints.append(
                f"{name}: {share}% dead rows ({dead}); autovacuum is behind, run "
                f"VACUUM (ANALYZE) {name}"
            )
        if live > 0 and table["last_analyze"] is None:
            hints.append(f"{name}: never analyzed; run ANALYZE {name} so plans use its indexes")
        if live >= SEQ_SCAN_ROWS_MIN and table["seq_scans"] > 10 * max(table["index_scans"], 1):
            hints.append(
                f"{name}: {table['seq_scans']} sequential scans against {table['index_scans']} "
                f"index scans on {live} rows; a filter may lack an index (see the slowest "
                "statements)"
            )
    for index in stats.indexes:
        if (
            index["scans"] == 0
            and not index["is_unique"]
            and not index["is_primary"]
            and index["bytes"] >= UNUSED_INDEX_BYTES_MIN
        ):
            hints.append(
                f"{index['schema']}.{index['name']} on {index['table']}: never used since the "
                f"statistics were reset and {_size(index['bytes'])}; consider dropping it"
            )
    if stats.slowest is None:
        hints.append(
            "pg_stat_statements is not available: add it to shared_preload_libraries, restart "
            "PostgreSQL and run CREATE EXTENSION pg_stat_statements to see the slowest "
            "statements"
        )
    return hints


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover - the loop returns at GB


def render_text(stats: DatabaseStats) -> str:
    """The report as aligned plain-text tables, for a terminal."""
    lines: list[str] = ["Tables (largest first)"]
    lines += _table(
        ["table", "total", "data", "indexes", "rows", "dead", "seq scans", "idx scans"],
        [
            [
                f"{t['schema']}.{t['name']}",
                _size(t["total_bytes"]),
                _size(t["table_bytes"]),
                _size(t["index_bytes"]),
                str(t["live_rows"]),
                str(t["dead_rows"]),
                str(t["seq_scans"]),
                str(t["index_scans"]),
            ]
            for t in stats.tables
        ],
    )
    lines += ["", "Indexes (least used first)"]
    lines += _table(
        ["index", "table", "scans", "size"],
        [
            [f"{i['schema']}.{i['name']}", i["table"], str(i["scans"]), _size(i["bytes"])]
            for i in stats.indexes
        ],
    )
    lines += ["", "Slowest statements (pg_stat_statements, by total time)"]
    if stats.slowest is None:
        lines.append("  not available (see hints)")
    else:
        lines += _table(
            ["total ms", "mean ms", "max ms", "calls", "statement"],
            [
                [
                    f"{s['total_ms']:.1f}",
                    f"{s['mean_ms']:.2f}",
                    f"{s['max_ms']:.2f}",
                    str(s["calls"]),
                    s["sql"][:120],
                ]
                for s in stats.slowest
            ],
        )
    lines += ["", "Hints"]
    lines += [f"  - {hint}" for hint in stats.hints] or ["  none"]
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    out = ["  " + "  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))]
    out += [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return [line.rstrip() for line in out]
