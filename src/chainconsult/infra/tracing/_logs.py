"""``trace_id`` and ``span_id`` on every log line written while a span is active."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from opentelemetry.trace import get_current_span

from chainconsult.infra.tracing._setup import active


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the active span, in the hex form trace viewers search by; None
    at the cost of one global's check while tracing is off."""
    if active() is None:
        return None
    context = get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def add_trace_ids(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the ids of the active span, while tracing is on."""
    ids = current_ids()
    if ids is not None:
        event_dict["trace_id"], event_dict["span_id"] = ids
    return event_dict
