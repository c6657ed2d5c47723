"""Who is really calling, and whether they may: the client IP (from X-Forwarded-For only when
the connecting peer is a TRUSTED_PROXY), BLOCKED_IPS refused with 403 before any other work,
and whether the caller is one of the TRUSTED_IPS.

It runs inside only the request id, the security headers and the crash barrier, so a blocked
source costs a header scan and a short answer that names its request id like every other
error: no database or Redis call."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

from starlette.types import ASGIApp, Receive, Scope, Send

from chainconsult.infra.http import send_problem
from chainconsult.infra.request_state import request_state

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class MalformedForwardedFor(ValueError):
    """A trusted proxy passed on an X-Forwarded-For hop that is not an IP address."""


def client_network(ip: str) -> str:
    """What a client's limits and throttles count by: an IPv4 address itself, an IPv6
    address's /64 (one subscriber's network, inside which a host picks addresses freely)."""
    if ":" not in ip:
        return ip
    return _ipv6_network(ip)


@lru_cache(maxsize=4096)
def _ipv6_network(ip: str) -> str:
    try:
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    except ValueError:
        return ip


@lru_cache(maxsize=4096)
def parse_ip(text: str) -> IPAddress | None:
    """An address as proxies write it: bare, ``1.2.3.4:port`` or ``[v6]:port``; IPv4-mapped
    IPv6 is unwrapped so one CIDR list covers both spellings. Cached: the same few addresses
    arrive over and over, and ipaddress parsing is slow next to a dict lookup."""
    value = text.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def in_networks(address: IPAddress | None, networks: Sequence[IPNetwork]) -> bool:
    if address is None:
        return False
    return any(address.version == net.version and address in net for net in networks)


def resolve_client_ip(
    peer: IPAddress | None, forwarded_for: list[str], trusted_proxies: Sequence[IPNetwork]
) -> IPAddress | None:
    """Walk X-Forwarded-For from the right (the hop our own proxy appended) past every
    trusted proxy; the first address that is not one is the client. Hops further left were
    written by the client itself and prove nothing."""
    client = peer
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    while hops and in_networks(client, trusted_proxies):
        hop = hops.pop()
        parsed = parse_ip(hop)
        if parsed is None:
            raise MalformedForwardedFor(hop.strip()[:64])
        client = parsed
    return client


class ClientIPMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        blocked_ips: Sequence[IPNetwork] = (),
        trusted_ips: Sequence[IPNetwork] = (),
        trusted_proxies: Sequence[IPNetwork] = (),
    ) -> None:
        self.app = app
        self.blocked_ips = tuple(blocked_ips)
        self.trusted_ips = tuple(trusted_ips)
        self.trusted_proxies = tuple(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer_host = scope["client"][0] if scope.get("client") else None
        peer = parse_ip(peer_host) if peer_host else None
        client: IPAddress | None = peer
        if self.trusted_proxies and in_networks(peer, self.trusted_proxies):
            forwarded = [
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name == b"x-forwarded-for"
            ]
            try:
                client = resolve_client_ip(peer, forwarded, self.trusted_proxies)
            except MalformedForwardedFor as exc:
                await send_problem(
                    scope,
                    send,
                    status=400,
                    title="Bad request",
                    detail=f"X-Forwarded-For has a hop that is not an IP address: {exc}.",
                    slug="bad-forwarded-for",
                )
                return
        if in_networks(client, self.blocked_ips):
            await send_problem(
                scope,
                send,
                status=403,
                title="Forbidden",
                detail="Requests from this address are not accepted.",
                slug="ip-blocked",
            )
            return
        state = request_state(scope)
        state.client_ip = str(client) if client is not None else peer_host
        state.client_trusted = in_networks(client, self.trusted_ips)
        await self.app(scope, receive, send)
