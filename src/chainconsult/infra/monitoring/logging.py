"""JSON log lines through structlog, with the standard library's loggers (the server's, granian
or uvicorn, SQLAlchemy, procrastinate) routed through the same renderer so every line carries
the request id. Lines are written in batches (log_writer.py); the per-request access line
skips structlog's chain altogether (``access_line``)."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import IO, Any

import orjson
import structlog

from chainconsult.infra.monitoring.log_writer import BatchedStreamHandler, LogWriter
from chainconsult.infra.tracing._logs import add_trace_ids, current_ids

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    # Always in the chain, deciding per line: structlog's cached loggers keep the chain they
    # were first used with, so a chain that changed when tracing started would leave every
    # logger used before then without ids.
    add_trace_ids,
]
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


def _dumps(value: Any, **_: Any) -> str:
    # orjson: several times json.dumps' speed; what it cannot encode is shown by repr, as
    # structlog's own renderer does.
    return orjson.dumps(value, default=repr, option=_ORJSON_OPTIONS).decode()


_writer: LogWriter | None = None


def configure_logging(level: str = "INFO", *, stream: IO[str] | None = None) -> None:
    """Idempotent: safe to call from every process and every app instance. While tracing is
    on every line written inside a span carries its ``trace_id`` and ``span_id``; ``stream``
    replaces standard output (a benchmark's /dev/null)."""
    global _writer
    structlog.configure(
        processors=[
            # First: an event below LOG_LEVEL (the access line under WARNING) is dropped
            # before the context merge and the timestamp are spent on it.
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
    )
    if _writer is not None:
        _writer.flush()
    _writer = LogWriter(stream or sys.stdout)
    handler = BatchedStreamHandler(_writer)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # One line per request is written by our own middleware; uvicorn's would repeat it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def flush_logs() -> None:
    """Write the lines still waiting for their batch (at shutdown)."""
    if _writer is not None:
        _writer.flush()


def access_line(
    *, method: str, path: str, status: int, duration_ms: float, request_id: str
) -> None:
    """The access line, built and encoded directly: the same fields, in the same order, as
    structlog's chain gives a ``log.info("request", ...)`` of chainconsult.access, at a
    fraction of its cost (docs/decisions/0033-access-log-fast-path.md). The caller has
    checked that INFO is enabled."""
    line: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": duration_ms,
        "event": "request",
        "request_id": request_id,
        "level": "info",
        "logger": "chainconsult.access",
        "timestamp": dt.datetime.now(dt.UTC),
    }
    if (ids := current_ids()) is not None:
        line["trace_id"], line["span_id"] = ids
    writer = _writer
    if writer is None:  # logging not configured (a bare app in a test): nowhere to write
        return
    writer.write(orjson.dumps(line, option=_ORJSON_OPTIONS | orjson.OPT_APPEND_NEWLINE))
