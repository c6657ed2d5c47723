"""The /metrics text: every contract metric (aggregated over all server workers in
multiprocess mode), this process's or every worker's process gauges, and system gauges read at
scrape time."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Gauge,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from chainconsult.infra.monitoring.metrics import NAMESPACE
from chainconsult.infra.monitoring.multiproc import multiprocess_dir

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Per process: in multiprocess mode each worker reports its own series (label pid), and a
# worker's series disappear when it exits ("liveall").
process_resident_memory_bytes = Gauge(
    "process_resident_memory_bytes",
    "Resident memory of the API process.",
    namespace=NAMESPACE,
    multiprocess_mode="liveall",
)
process_cpu_percent = Gauge(
    "process_cpu_percent",
    "CPU use of the API process since the previous sample, in percent of one core.",
    namespace=NAMESPACE,
    multiprocess_mode="liveall",
)
process_open_fds = Gauge(
    "process_open_fds",
    "Open file descriptors of the API process.",
    namespace=NAMESPACE,
    multiprocess_mode="liveall",
)
process_start_time_seconds = Gauge(
    "process_start_time_seconds",
    "Start time of the API process, seconds since the epoch.",
    namespace=NAMESPACE,
    multiprocess_mode="liveall",
)
dependency_up = Gauge(
    "dependency_up",
    "1 when the last health probe reached the dependency (postgres, redis), else 0.",
    ["dependency"],
    namespace=NAMESPACE,
    multiprocess_mode="min",
)
jobs_oldest_age_seconds = Gauge(
    "jobs_oldest_age_seconds",
    "Age of the oldest job waiting to run (0 when none).",
    namespace=NAMESPACE,
    multiprocess_mode="max",
)
jobs_worker_heartbeat_age_seconds = Gauge(
    "jobs_worker_heartbeat_age_seconds",
    "Seconds since the freshest job worker heartbeat.",
    namespace=NAMESPACE,
    multiprocess_mode="min",
)
jobs_failed_last_hour = Gauge(
    "jobs_failed_last_hour",
    "Jobs that failed for good in the last hour.",
    namespace=NAMESPACE,
    multiprocess_mode="max",
)

_process = psutil.Process()


def sample_process() -> dict[str, float]:
    """Update this process's gauges; returns the values for health and alert rules."""
    with _process.oneshot():
        rss = float(_process.memory_info().rss)
        cpu = float(_process.cpu_percent(interval=None))
        fds = float(_process.num_fds())
        started = float(_process.create_time())
    process_resident_memory_bytes.set(rss)
    process_cpu_percent.set(cpu)
    process_open_fds.set(fds)
    process_start_time_seconds.set(started)
    return {"rss_bytes": rss, "cpu_percent": cpu, "open_fds": fds}


class SystemCollector(Collector):
    """Host gauges computed when scraped, so they are never stale and cost nothing between
    scrapes. The same for every worker, hence collected outside the multiprocess files."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def collect(self) -> Iterator[Metric]:
        memory = psutil.virtual_memory()
        yield GaugeMetricFamily(
            f"{NAMESPACE}_system_memory_used_ratio",
            "Share of the host's memory in use (0-1).",
            value=memory.percent / 100,
        )
        yield GaugeMetricFamily(
            f"{NAMESPACE}_system_memory_available_bytes",
            "Memory available to new processes on the host.",
            value=float(memory.available),
        )
        yield GaugeMetricFamily(
            f"{NAMESPACE}_system_cpu_count", "Logical CPUs of the host.", value=os.cpu_count() or 1
        )
        yield GaugeMetricFamily(
            f"{NAMESPACE}_system_load1", "One-minute load average.", value=os.getloadavg()[0]
        )
        disk = data_dir_disk(self.data_dir)
        if disk is not None:
            used_ratio, free = disk
            yield GaugeMetricFamily(
                f"{NAMESPACE}_data_dir_disk_used_ratio",
                "Share of the data dir's file system in use (0-1).",
                value=used_ratio,
            )
            yield GaugeMetricFamily(
                f"{NAMESPACE}_data_dir_disk_free_bytes",
                "Free bytes on the data dir's file system.",
                value=float(free),
            )
        yield GaugeMetricFamily(
            f"{NAMESPACE}_scrape_timestamp_seconds",
            "When this scrape was rendered.",
            value=time.time(),
        )


def data_dir_disk(data_dir: Path) -> tuple[float, int] | None:
    """(used ratio, free bytes) of the file system holding the data dir (or its parent when
    the directory does not exist yet)."""
    path = data_dir.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        usage = psutil.disk_usage(str(path))
    except OSError:
        return None
    return usage.percent / 100, int(usage.free)


def render_metrics(data_dir: Path) -> bytes:
    """Prometheus text format of everything this deployment measures on this host."""
    path = multiprocess_dir()
    if path is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        # One process: the default registry also carries prometheus-client's own process,
        # platform and garbage-collector collectors.
        body = generate_latest(REGISTRY)
    system = CollectorRegistry()
    system.register(SystemCollector(data_dir))
    return body + generate_latest(system)
