"""The same server with one setting changed, measured side by side with the default one in
the same run: what a setting costs in throughput.

- ``info``: LOG_LEVEL=INFO, one JSON access line per request (the default server runs at
  WARNING). Target: at most 10 % of cached-read throughput (issue 20).
- ``tracing``: OpenTelemetry on with the default sampler (parentbased_always_on: every
  request traced), spans exported over OTLP/HTTP to a sink in the harness that reads and
  discards them. Target: at most 15 % (issue 25).
- ``tracing10``: the same with one request in ten sampled (parentbased_traceidratio 0.1).

Tracing off is the default server; its cost against an older commit is a comparison of two
runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.load._scenarios import Measurement, figures


@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    max_cost_percent: float
    env: Callable[[str], dict[str, str]]
    """The server's environment on top of the default one, given the OTLP sink's URL."""

    @property
    def server(self) -> str:
        return f"chainconsult+{self.name}"

    def server_env(self, default: dict[str, str], otlp_url: str) -> dict[str, str]:
        """The default server's environment with this variant's setting on top."""
        return {**default, **self.env(otlp_url)}


VARIANTS = {
    variant.name: variant
    for variant in (
        Variant("info", "LOG_LEVEL=INFO (access line per request)", 10.0, lambda _: {
            "LOG_LEVEL": "INFO"
        }),
        Variant("tracing", "tracing on, default sampler, OTLP/HTTP to a sink", 15.0, lambda url: {
            "OTEL_EXPORTER_OTLP_ENDPOINT": url
        }),
        # What an operator sets when every request is too many: one trace in ten.
        Variant("tracing10", "tracing on, 1 request in 10 sampled", 15.0, lambda url: {
            "OTEL_EXPORTER_OTLP_ENDPOINT": url,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        }),
    )
}  # fmt: skip


class OtlpSink:
    """Answers every OTLP/HTTP export with success (an empty ExportTraceServiceResponse is
    zero bytes) after reading it; counts what arrived, to show the spans did flow."""

    def __init__(self) -> None:
        self.exports = 0
        self.bytes = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", 0))
                self.rfile.read(size)
                sink.exports += 1
                sink.bytes += size
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> OtlpSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def parse(value: str) -> list[Variant]:
    names = [name for name in value.split(",") if name and name != "none"]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(sorted(unknown))}; choose from "
                         f"{', '.join(VARIANTS)}")  # fmt: skip
    return [VARIANTS[name] for name in names]


def cost_rows(
    rows: list[Measurement], variants: list[Variant]
) -> list[tuple[Variant, str, int, float, float]]:
    """(variant, scenario, connections, default RPS, variant RPS) for every point both ran;
    measured in turns (--rounds), each server's median (_scenarios.figures)."""
    found = figures(rows)
    out = []
    for variant in variants:
        for (server, scenario, connections), theirs in found.items():
            ours = found.get(("chainconsult", scenario, connections))
            if server == variant.server and ours is not None:
                out.append(
                    (variant, scenario, connections, ours.requests_per_s, theirs.requests_per_s)
                )
    return out


def cost_percent(default_rps: float, variant_rps: float) -> float:
    return 100 * (1 - variant_rps / default_rps) if default_rps else 0.0


def verdict_rows(rows: list[Measurement], variants: list[Variant]) -> list[str]:
    """Rows of the report's target table, in its `| target | measured | verdict |` form."""
    lines = []
    for variant, scenario, c, ours, theirs in cost_rows(rows, variants):
        cost = cost_percent(ours, theirs)
        mark = "PASS" if cost <= variant.max_cost_percent else "MISS"
        lines.append(
            f"| {variant.what}: costs <= {variant.max_cost_percent:.0f} % of {scenario} RPS "
            f"({c} conn.) | {cost:+.1f} % | {mark} |"
        )
    return lines


def cost_table(rows: list[Measurement], variants: list[Variant], sink: OtlpSink | None) -> str:
    lines = [
        "| variant | scenario | connections | default RPS | variant RPS | cost |",
        "|---|---|---|---|---|---|",
    ]
    for variant, scenario, c, ours, theirs in cost_rows(rows, variants):
        lines.append(
            f"| {variant.server} ({variant.what}) | {scenario} | {c} | {ours:,.0f} | "
            f"{theirs:,.0f} | {cost_percent(ours, theirs):+.1f} % |"
        )
    if sink is not None and sink.exports:
        lines.append(f"\nThe tracing sink received {sink.exports:,} exports, {sink.bytes:,} bytes.")
    return "\n".join(lines)
