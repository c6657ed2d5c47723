"""A small routed network of Linux network namespaces: one bridge in the host's namespace
(which also holds the shared PostgreSQL, Redis and SMTP sink) and one namespace per node,
joined to the bridge by a veth pair. Each node sees only its own `lo` and `eth0`, so API
nodes and workers can only meet through the network, as on separate hosts.

Everything created carries the ``ccmh`` prefix; ``Network.remove_leftovers`` deletes what a
run that was killed outright (SIGKILL, power loss) left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass

PREFIX = "ccmh"
BRIDGE = f"{PREFIX}0"


class NetworkError(RuntimeError):
    pass


def ip(*args: str, check: bool = True) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True)
class Node:
    name: str
    """Namespace name (also the node's name in the report)."""
    address: str

    def exec_prefix(self) -> list[str]:
        """Prefix of a command line that runs the command inside this node's namespace."""
        return ["ip", "netns", "exec", self.name]


class Network:
    def __init__(self, subnet: str = "10.213.7") -> None:
        self.subnet = subnet
        self.gateway = f"{subnet}.1"
        self.nodes: list[Node] = []

    def address(self, host: int) -> str:
        return f"{self.subnet}.{host}"

    def create(self) -> None:
        self.remove_leftovers()
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")

    def add_address(self, host: int) -> str:
        """A second address for the host side (a client with an IP of its own)."""
        address = self.address(host)
        ip("addr", "add", f"{address}/24", "dev", BRIDGE)
        return address

    def add_node(self, name: str, host: int) -> Node:
        namespace = f"{PREFIX}-{name}"
        outside = f"{PREFIX}{host}h"  # interface names are limited to 15 characters
        inside = f"{PREFIX}{host}n"
        node = Node(namespace, self.address(host))
        ip("netns", "add", namespace)
        self.nodes.append(node)
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", namespace)
        ip("link", "set", outside, "master", BRIDGE)
        ip("link", "set", outside, "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        ip("-n", namespace, "link", "set", inside, "name", "eth0")
        ip("-n", namespace, "addr", "add", f"{node.address}/24", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")
        ip("-n", namespace, "route", "add", "default", "via", self.gateway)
        return node

    def destroy(self) -> None:
        for node in self.nodes:
            _kill_namespace_processes(node.name)
            ip("netns", "del", node.name, check=False)
        self.nodes.clear()
        ip("link", "del", BRIDGE, check=False)
        self.remove_leftovers()

    @staticmethod
    def remove_leftovers() -> list[str]:
        """Namespaces (and the processes in them) and links of an earlier run."""
        removed = []
        for line in ip("netns", "list").splitlines():
            name = line.split()[0] if line.strip() else ""
            if name.startswith(f"{PREFIX}-"):
                _kill_namespace_processes(name)
                ip("netns", "del", name, check=False)
                removed.append(name)
        # A deleted namespace takes its veth pairs along, but asynchronously: wait for them
        # (and delete any left) so the new ones can have the same names.
        deadline = time.monotonic() + 10
        while links := _our_links():
            if time.monotonic() > deadline:
                for link in links:
                    ip("link", "del", link, check=False)
                    removed.append(link)
                break
            if BRIDGE in links:
                ip("link", "del", BRIDGE, check=False)
                removed.append(BRIDGE)
            time.sleep(0.1)
        return removed


def _our_links() -> list[str]:
    names = []
    for line in ip("-o", "link", "show").splitlines():
        # "7: ccmh11h@if6: <BROADCAST,...": the name, without the peer suffix.
        name = line.split(":", 2)[1].strip().split("@", 1)[0]
        if name.startswith(PREFIX):
            names.append(name)
    return names


def _kill_namespace_processes(namespace: str) -> None:
    """The processes still running inside one of our namespaces (only this tool starts
    any there): SIGTERM, then SIGKILL what is left after a few seconds."""
    pids = [int(pid) for pid in ip("netns", "pids", namespace, check=False).split()]
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            pids = [int(pid) for pid in ip("netns", "pids", namespace, check=False).split()]
            if not pids:
                return
            time.sleep(0.1)
