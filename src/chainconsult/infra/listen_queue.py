"""Whether the kernel hands a dying server worker's waiting connections to the others.

granian gives each server worker a listening socket of its own on the same port
(SO_REUSEPORT): the kernel spreads new connections over the workers' accept queues. When a
worker dies (a crash, the OOM killer, a SIGKILL), the connections waiting in its queue, which
no worker has accepted yet, are reset, unless ``net.ipv4.tcp_migrate_req`` is 1 (Linux 5.14
and newer), in which case the kernel moves them to another worker's queue. `make chaos`
measured the difference (docs/decisions/0004-tcp-migrate-req-on-api-hosts.md):
with 0, a third of the runs had a request or two on new connections fail just after the kill;
with 1, none did.
deploy/sysctl.d/60-chainconsult.conf sets it; `chainconsult serve` warns when it is off."""

from __future__ import annotations

from pathlib import Path

MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")
SYSCTL = "net.ipv4.tcp_migrate_req"


def migration_setting(path: Path = MIGRATE_REQ) -> str | None:
    """The setting as the kernel reports it ("0" or "1"), or None where there is none (not
    Linux, an older kernel, a sandbox without /proc)."""
    try:
        return path.read_text().strip()
    except OSError:
        return None


def migration_warning(workers: int, path: Path = MIGRATE_REQ) -> str | None:
    """What `serve` tells the operator when several workers share the port and the kernel
    would reset a dead worker's waiting connections; None when there is nothing to say."""
    if workers < 2 or migration_setting(path) != "0":
        return None
    return (
        f"{SYSCTL} is 0: when a server worker dies, the connections waiting in its listen "
        f"queue are reset instead of going to the other workers; set it to 1 "
        f"(deploy/sysctl.d/60-chainconsult.conf, or `sysctl -w {SYSCTL}=1`)"
    )
