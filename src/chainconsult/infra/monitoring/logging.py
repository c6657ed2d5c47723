"""JSON log lines through structlog, with the standard library's loggers (the server's, granian
or uvicorn, SQLAlchemy, procrastinate) routed through the same renderer so every line carries
the request id."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from chainconsult.infra.tracing._logs import add_trace_ids

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(level: str = "INFO", *, trace_ids: bool = False) -> None:
    """Idempotent: safe to call from every process and every app instance. ``trace_ids``
    (tracing on) adds the active span's ``trace_id`` and ``span_id`` to every line."""
    shared = [*_SHARED, add_trace_ids] if trace_ids else _SHARED
    structlog.configure(
        processors=[
            # First: an event below LOG_LEVEL (the access line under WARNING) is dropped
            # before the context merge and the timestamp are spent on it.
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # One line per request is written by our own middleware; uvicorn's would repeat it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
