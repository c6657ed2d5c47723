"""The layout keeps its shape: infra imports nothing above it, the top-level packages do not
import each other in a circle, and no source module outgrows 400 lines.

Read from the source with `ast`, so an import inside a function or under TYPE_CHECKING counts
the same as one at the top of a file."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = "chainconsult"
SRC = Path(__file__).resolve().parents[1] / "src" / ROOT
MAX_LINES = 400
# Alembic revisions are generated and frozen once applied; their length is not a design choice.
LINE_LIMIT_EXEMPT = ("migrations",)
KNOWN_CYCLES: set[frozenset[str]] = set()
"""Cycles still to break. The test fails on any other cycle, and on one of these once it is
gone, so the list only shrinks."""
KNOWN_LONG_MODULES: set[str] = set()
"""Modules still over the limit; as with KNOWN_CYCLES, the list only shrinks."""
KNOWN_INFRA_DEBTS: set[str] = set()
"""infra modules that still import above infra; as with KNOWN_CYCLES, the list only shrinks."""


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def _imports(module: str, path: Path, known: set[str]) -> Iterator[Import]:
    """Every chainconsult module `module` imports, wherever in the file the import sits."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            # `from package import module` imports the module, not only the package.
            names = [f"{source}.{alias.name}" for alias in node.names]
            submodules = [name for name in names if name in known]
            for name in submodules or [source]:
                yield Import(module, name, node.lineno)


def _internal_imports() -> list[Import]:
    modules = _modules()
    known = set(modules)
    return [
        found
        for module, path in modules.items()
        for found in _imports(module, path, known)
        if found.imported == ROOT or found.imported.startswith(f"{ROOT}.")
    ]


def _top(module: str) -> str:
    """The top-level package (or top-level module) a module belongs to: `accounts`, `config`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_infra_imports_nothing_above_it() -> None:
    # The package root holds only __version__ and imports nothing, so reading it is allowed.
    upward = [
        found
        for found in _internal_imports()
        if _top(found.importer) == "infra" and _top(found.imported) not in {"infra", ROOT}
    ]
    violations = [str(found) for found in upward if found.importer not in KNOWN_INFRA_DEBTS]
    paid = KNOWN_INFRA_DEBTS - {found.importer for found in upward}
    assert not violations, "infra imports modules above it:\n" + "\n".join(violations)
    assert not paid, f"no longer import above infra, remove from KNOWN_INFRA_DEBTS: {paid}"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_top_level_packages() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    examples: dict[tuple[str, str], Import] = {}
    for found in _internal_imports():
        source, target = _top(found.importer), _top(found.imported)
        if source != target and ROOT not in (source, target):
            edges[source].add(target)
            examples.setdefault((source, target), found)
    report = []
    found = _cycles(edges)
    report.extend(
        f"gone, remove from KNOWN_CYCLES: {', '.join(sorted(known))}"
        for known in KNOWN_CYCLES
        if known not in {frozenset(component) for component in found}
    )
    for component in found:
        members = set(component)
        if frozenset(members) in KNOWN_CYCLES:
            continue
        report.append("cycle: " + ", ".join(component))
        report.extend(
            f"  {example}"
            for (source, target), example in sorted(examples.items())
            if source in members and target in members
        )
    assert not report, "\n".join(report)


def test_no_module_over_the_line_limit() -> None:
    lengths = {
        module: len(path.read_text().splitlines())
        for module, path in _modules().items()
        if _top(module) not in LINE_LIMIT_EXEMPT
    }
    report = [
        f"{module}: {lines} lines"
        for module, lines in sorted(lengths.items())
        if lines > MAX_LINES and module not in KNOWN_LONG_MODULES
    ]
    report.extend(
        f"{module} is within the limit now: remove it from KNOWN_LONG_MODULES"
        for module in sorted(KNOWN_LONG_MODULES)
        if lengths.get(module, 0) <= MAX_LINES
    )
    assert not report, f"modules over {MAX_LINES} lines:\n" + "\n".join(report)


def test_cycles_are_found_around_a_circle_and_not_along_a_line() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"d"}}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_the_reader_sees_lazy_typing_only_and_relative_imports(tmp_path: Path) -> None:
    source = tmp_path / "reader.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from chainconsult.config import Settings\n"
        "def build() -> None:\n"
        "    import chainconsult.errors\n"
        "from ..models import base\n"
        "from . import sibling\n"
    )
    known = {f"{ROOT}.infra.models.base", f"{ROOT}.infra.db.sibling"}
    found = {item.imported for item in _imports(f"{ROOT}.infra.db.reader", source, known)}
    assert {
        f"{ROOT}.config",
        f"{ROOT}.errors",
        f"{ROOT}.infra.models.base",
        f"{ROOT}.infra.db.sibling",
    } <= found
