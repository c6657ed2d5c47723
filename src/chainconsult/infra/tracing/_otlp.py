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

_CACHED_ATTRIBUTES = 4096
"""Distinct (key, value) pairs kept encoded; past it the cache starts again."""
# SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, and SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK on top of it.
_LOCAL_PARENT, _REMOTE_PARENT = 0x100, 0x300

_attributes: dict[tuple[str, type, Any], bytes] = {}


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 on the wire: two's complement, ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: ``tag`` (its number and wire type, encoded) and payload."""
    return tag + _varint(len(payload)) + payload


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


def _key_value(key: str, value: Any) -> bytes | None:
    cache_key = (key, type(value), value)
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
    if len(_attributes) >= _CACHED_ATTRIBUTES:
        _attributes.clear()
    _attributes[cache_key] = pair
    return pair


def _attribute_list(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes | None:
    if not attributes:
        return b""
    out = []
    for key, value in attributes.items():
        pair = _key_value(key, value)
        if pair is None:
            return None
        out.append(_field(tag, pair))
    return b"".join(out)


def _span(span: ReadableSpan) -> bytes | None:
    """Span message, or None when its shape is left to the SDK's encoder."""
    context = span.context
    if (
        context is None
        or span.events
        or span.links
        or context.trace_state
        or span.dropped_attributes
        or span.dropped_events
        or span.dropped_links
        or span.start_time is None
        or span.end_time is None
    ):
        return None
    attributes = _attribute_list(b"\x4a", span.attributes)
    if attributes is None:
        return None
    parent = span.parent
    status = span.status
    status_body = _text(b"\x12", status.description)
    if code := status.status_code.value:
        status_body += b"\x18" + _varint(code)
    return b"".join(
        (
            b"\x0a\x10",
            context.trace_id.to_bytes(16, "big"),
            b"\x12\x08",
            context.span_id.to_bytes(8, "big"),
            b"\x22\x08" + parent.span_id.to_bytes(8, "big") if parent else b"",
            _text(b"\x2a", span.name),
            b"\x30" + _varint(span.kind.value + 1),  # the protobuf enum counts from UNSPECIFIED
            b"\x39" + struct.pack("<Q", span.start_time),
            b"\x41" + struct.pack("<Q", span.end_time),
            attributes,
            _field(b"\x7a", status_body),
            b"\x85\x01"
            + struct.pack("<I", _REMOTE_PARENT if parent and parent.is_remote else _LOCAL_PARENT),
        )
    )


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
    for span in spans:
        body = _span(span)
        if body is None:
            return _sdk_encoded(spans)
        resources[id(span.resource)] = span.resource
        by_scope = groups.setdefault(id(span.resource), {})
        by_scope.setdefault(span.instrumentation_scope or None, []).append(body)
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
                    *(_field(b"\x12", body) for body in bodies),
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
