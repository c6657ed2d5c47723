"""Server-rendered pages (the /status dashboard): Jinja2 templates and the static files they
use, all served by the app itself (no CDN), with no inline script or style so a strict
Content-Security-Policy (`script-src 'self'`) holds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from starlette.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/status/static"
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


templates.env.filters["number"] = _number
templates.env.filters["observed"] = _observed
templates.env.filters["percent"] = _percent
templates.env.filters["when"] = _when
templates.env.globals["static_path"] = STATIC_PATH
