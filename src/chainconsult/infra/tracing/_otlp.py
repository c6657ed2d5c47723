"""OTLP/HTTP export with the request body written by hand: the SDK's encoder builds a protobuf
object per span, attribute and value, about as much CPU as recording the span in the first
place, taken from the server's one core through the export thread
(docs/decisions/0042-tracing-cost.md). Spans of the usual shape (scalar attributes, no events,
links, trace state or dropped counts) are written here, with each attribute's bytes cached:
the same method, route and statement recur on every request. A batch holding any other span
goes through the SDK's ``encode_spans`` whole; a test holds both to the same message."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, Status, StatusCode

_CACHED = 4096
"""Distinct attributes (and span names, statuses) kept encoded; past it a cache starts again."""
# SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, and SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK on top of it.
_LOCAL_PARENT = b"\x85\x01" + struct.pack("<I", 0x100)
_REMOTE_PARENT = b"\x85\x01" + struct.pack("<I", 0x300)
_TIMES = struct.Struct("<BQBQ")
"""start_time_unix_nano and end_time_unix_nano (fixed64), each after its tag."""
_KINDS = {kind: b"\x30" + bytes([kind.value + 1]) for kind in SpanKind}
"""The protobuf enum counts from SPAN_KIND_UNSPECIFIED."""

_attributes: dict[tuple[bytes, str, type, Any], bytes] = {}
_names: dict[str, bytes] = {}
_statuses: dict[tuple[StatusCode, str | None], bytes] = {}


def _slow_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 on the wire: two's complement, ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS = tuple(_slow_varint(value) for value in range(1 << 14))
"""Every length under 16 KiB, encoded: a lookup instead of a loop for nearly every field."""


def _varint(value: int) -> bytes:
    return _SMALL_VARINTS[value] if 0 <= value < 16384 else _slow_varint(value)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: ``tag`` (its number and wire type, encoded) and payload."""
    size = len(payload)
    return tag + (_SMALL_VARINTS[size] if size < 16384 else _slow_varint(size)) + payload


def _text(tag: bytes, value: str | None) -> bytes:
    return _field(tag, value.encode()) if value else b""


def _any_value(value: Any) -> bytes | None:
    """AnyValue of a scalar; None for what the SDK's encoder is left to (sequences)."""
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, int):
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + struct.pack("<d", value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    return None


def _remembered(cache: dict[Any, bytes], key: Any, encoded: bytes) -> bytes:
    if len(cache) >= _CACHED:
        cache.clear()
    cache[key] = encoded
    return encoded


def _attribute(tag: bytes, key: str, value: Any) -> bytes | None:
    """One KeyValue field of an attribute list (``tag``: the list's field)."""
    cache_key = (tag, key, type(value), value)
    try:
        return _attributes[cache_key]
    except KeyError:
        pass
    except TypeError:  # unhashable: a sequence
        return None
    encoded = _any_value(value)
    if encoded is None:
        return None
    pair = _field(b"\x0a", key.encode()) + _field(b"\x12", encoded)
    return _remembered(_attributes, cache_key, _field(tag, pair))


def _attribute_list(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes | None:
    if not attributes:
        return b""
    out = []
    for key, value in attributes.items():
        entry = _attribute(tag, key, value)
        if entry is None:
            return None
        out.append(entry)
    return b"".join(out)


def _name(name: str) -> bytes:
    encoded = _names.get(name)
    return _remembered(_names, name, _text(b"\x2a", name)) if encoded is None else encoded


def _status(status: Status) -> bytes:
    key = (status.status_code, status.description)
    encoded = _statuses.get(key)
    if encoded is None:
        body = _text(b"\x12", status.description)
        if code := status.status_code.value:
            body += b"\x18" + _varint(code)
        encoded = _remembered(_statuses, key, _field(b"\x7a", body))
    return encoded


def _span(span: ReadableSpan) -> bytes | None:
    """The span as a field of ScopeSpans, or None when its shape is left to the SDK's
    encoder."""
    context = span.context
    start, end = span.start_time, span.end_time
    if (
        context is None
        or start is None
        or end is None
        or span.events
        or span.links
        or context.trace_state
        or span.dropped_attributes
        or span.dropped_events
        or span.dropped_links
    ):
        return None
    attributes = _attribute_list(b"\x4a", span.attributes)
    if attributes is None:
        return None
    parent = span.parent
    body = b"".join(
        (
            b"\x0a\x10",
            context.trace_id.to_bytes(16, "big"),
            b"\x12\x08",
            context.span_id.to_bytes(8, "big"),
            b"\x22\x08" + parent.span_id.to_bytes(8, "big") if parent else b"",
            _name(span.name),
            _KINDS[span.kind],
            _TIMES.pack(0x39, start, 0x41, end),
            attributes,
            _status(span.status),
            _REMOTE_PARENT if parent and parent.is_remote else _LOCAL_PARENT,
        )
    )
    return _field(b"\x12", body)


def _scope(scope: InstrumentationScope | None) -> bytes | None:
    if scope is None:
        return b""
    attributes = _attribute_list(b"\x1a", scope.attributes)
    if attributes is None:
        return None
    return _text(b"\x0a", scope.name) + _text(b"\x12", scope.version) + attributes


def _sdk_encoded(spans: Sequence[ReadableSpan]) -> bytes:
    return bytes(encode_spans(spans).SerializePartialToString())


def encode_request(spans: Sequence[ReadableSpan]) -> bytes:
    """ExportTraceServiceRequest of ``spans``, grouped by resource and scope as the SDK does."""
    # By identity: a Resource hashes by dumping its attributes to JSON, and a process has one.
    resources: dict[int, Resource] = {}
    groups: dict[int, dict[InstrumentationScope | None, list[bytes]]] = {}
    # Spans come in runs of one tracer's: the same resource and scope objects as the last.
    last: tuple[Resource | None, InstrumentationScope | None] = (None, None)
    bucket: list[bytes] = []
    for span in spans:
        body = _span(span)
        if body is None:
            return _sdk_encoded(spans)
        resource, scope = span.resource, span.instrumentation_scope
        if resource is not last[0] or scope is not last[1]:
            last = (resource, scope)
            resources[id(resource)] = resource
            by_scope = groups.setdefault(id(resource), {})
            bucket = by_scope.setdefault(scope or None, [])
        bucket.append(body)
    out = []
    for key, by_scope in groups.items():
        resource = resources[key]
        resource_attributes = _attribute_list(b"\x0a", resource.attributes)
        if resource_attributes is None:
            return _sdk_encoded(spans)
        parts = [_field(b"\x0a", resource_attributes)]
        for scope, bodies in by_scope.items():
            scope_body = _scope(scope)
            if scope_body is None:
                return _sdk_encoded(spans)
            scope_spans = b"".join(
                (
                    _field(b"\x0a", scope_body),
                    *bodies,
                    _text(b"\x1a", scope.schema_url if scope else None),
                )
            )
            parts.append(_field(b"\x12", scope_spans))
        parts.append(_text(b"\x1a", resource.schema_url))
        out.append(_field(b"\x0a", b"".join(parts)))
    return b"".join(out)


class OtlpSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP exporter (endpoint, headers, compression, retries from the
    OTEL_EXPORTER_OTLP_* variables) with ``encode_request`` as its encoder. Its HTTP client
    is the SDK's private ``_client``: the version is pinned below the next minor, and the
    request trace test sends through it to a real receiver."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        result = self._client.export(encode_request(spans))
        return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE
