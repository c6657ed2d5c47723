"""Server-rendered pages (the marketplace's pages and the /status dashboard): the layout,
Jinja2 templates and the static files they use, all served by the app itself (no CDN), with no
inline script or style so a strict Content-Security-Policy (`script-src 'self'`) holds. No
rule of the marketplace lives here: each domain's pages.py calls its services."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from decimal import Decimal
from pathlib import Path

from markupsafe import Markup, escape
from starlette.templating import Jinja2Templates

from chainconsult.infra.text import byte_size

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/status/static"
PAGE_STATIC_PATH = "/static"
"""Where the pages' stylesheet and script are served (the same directory as the dashboard's)."""
NO_VALUE = "\u2013"
"""Shown for a number that is not known (an en dash)."""

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def _number(value: float | int | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return NO_VALUE
    return f"{value:,.{digits}f}{unit}"


def _percent(value: float | None) -> str:
    return NO_VALUE if value is None else f"{value * 100:.1f} %"


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return NO_VALUE
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _observed(value: float | int | str | None, unit: str | None) -> str:
    if value is None:
        return NO_VALUE
    if unit == "bytes" and isinstance(value, int | float):
        return f"{value / 1_048_576:,.1f} MiB"
    if unit == "percent" and isinstance(value, int | float):
        return f"{value:.1f} %"
    return f"{value} {unit or ''}".strip()


def _date(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return NO_VALUE
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).date()
    return value.strftime("%d %b %Y")


def _money(amount: Decimal | str | None, currency: str = "") -> str:
    if amount is None:
        return NO_VALUE
    return f"{Decimal(amount):,.2f} {currency}".strip()


_MARK = re.compile(r"(</?mark>)")


def _marked(html: str | None) -> Markup:
    """A search highlight (experts/highlight.py: escaped text with the
    matches in <mark>) as markup. Belt and braces: any angle bracket outside the two <mark>
    tags is escaped again, so nothing but <mark> can ever reach the page from it."""
    if not html:
        return Markup("")
    parts = _MARK.split(html)
    return Markup(  # noqa: S704 - built from escaped text and the two <mark> tags only
        "".join(
            part if _MARK.fullmatch(part) else part.replace("<", "&lt;").replace(">", "&gt;")
            for part in parts
        )
    )


def _label(value: str) -> str:
    """A vocabulary value or status as words: ``smart-contract-audit`` -> Smart contract audit."""
    text = str(value).replace("_", " ").replace("-", " ")
    return text[:1].upper() + text[1:]


def _paragraphs(text: str | None) -> Markup:
    """Multi-line user text as paragraphs, escaped."""
    if not text:
        return Markup("")
    blocks = [block.strip() for block in re.split(r"\n\s*\n", str(text)) if block.strip()]
    return Markup("").join(
        Markup("<p>{}</p>").format(Markup("<br>").join(escape(line) for line in block.split("\n")))
        for block in blocks
    )


def _templates_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(TEMPLATES_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(TEMPLATES_DIR).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


TEMPLATES_DIGEST = _templates_digest()
"""Changes with any template: part of the key of every cached page, so a deploy that changes
the layout never serves a page rendered by the one before."""

templates.env.filters["date"] = _date
templates.env.filters["label"] = _label
templates.env.filters["marked"] = _marked
templates.env.filters["money"] = _money
templates.env.filters["paragraphs"] = _paragraphs
templates.env.filters["number"] = _number
templates.env.filters["observed"] = _observed
templates.env.filters["percent"] = _percent
templates.env.filters["size"] = byte_size
templates.env.filters["when"] = _when
templates.env.globals["static_path"] = STATIC_PATH
templates.env.globals["page_static_path"] = PAGE_STATIC_PATH
