"""The README stays a front door and the documentation stays connected: the README is short,
every page in docs/ is reachable from it, and no relative link or anchor points nowhere."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
DECISIONS = DOCS / "decisions"
README_MAX_LINES = 200

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md")), *sorted((REPO / "bench").glob("*.md"))]


def _links(page: Path) -> list[str]:
    """The targets of the page's Markdown links, code blocks and code spans left out."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", page.read_text()))
    return _LINK.findall(text)


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target)


def _anchors(page: Path) -> set[str]:
    """The heading anchors GitHub gives the page: lower case, punctuation dropped, spaces as
    hyphens, a repeated heading numbered."""
    seen: Counter[str] = Counter()
    anchors = set()
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text())):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return anchors


def _linked_files(page: Path) -> set[Path]:
    return {
        (page.parent / target.split("#")[0]).resolve()
        for target in _links(page)
        if _relative(target) and target.split("#")[0]
    }


def test_readme_is_at_most_200_lines() -> None:
    lines = README.read_text().splitlines()

    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    pages = {page.resolve() for page in DOCS.glob("*.md")}

    unlinked = pages - _linked_files(README)

    assert not unlinked, f"not linked from README.md: {sorted(p.name for p in unlinked)}"


def test_every_decision_record_is_linked_from_the_index() -> None:
    index = DECISIONS / "README.md"
    records = {page.resolve() for page in DECISIONS.glob("[0-9][0-9][0-9][0-9]-*.md")}

    unlinked = records - _linked_files(index)

    assert index.resolve() in _linked_files(README)
    assert records
    assert not unlinked, f"not in docs/decisions/README.md: {sorted(p.name for p in unlinked)}"


@pytest.mark.parametrize("page", _pages(), ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_points_at_a_file_and_anchor_that_exist(page: Path) -> None:
    broken = []
    for target in _links(page):
        if not _relative(target):
            continue
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        check_anchor = bool(anchor) and destination.suffix == ".md"
        if not destination.exists() or (check_anchor and anchor not in _anchors(destination)):
            broken.append(target)

    assert not broken, f"{page.relative_to(REPO)}: broken links {broken}"


def test_the_link_checker_sees_a_broken_anchor_and_a_missing_file(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Two `words`, here\n\n[ok](#two-words-here) [bad](#nowhere) "
        "[gone](missing.md) `[code](ignored.md)`\n\n```\n[fenced](ignored.md)\n```\n"
    )

    assert _links(page) == ["#two-words-here", "#nowhere", "missing.md"]
    assert _anchors(page) == {"title", "two-words-here"}
