"""Infra's settings groups, one module per component (database.py for infra/db, caching.py for
infra/cache and Redis...), and here what every group shares: the model configuration, the
error a bad value raises, the list types read from comma-separated variables.
chainconsult.config composes the groups. They live apart from their components so that
reading the settings imports no component (serve must not import prometheus_client, which
infra/cache imports, before it forks its workers)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic_settings import NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SETTINGS_CONFIG = SettingsConfigDict(
    populate_by_name=True, extra="ignore", env_ignore_empty=True, validate_default=True
)


class ConfigError(Exception):
    """A setting has a bad value; the message is one line naming the variable."""


def split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def parse_networks(value: Any) -> list[IPNetwork]:
    networks: list[IPNetwork] = []
    for item in split_commas(value) or []:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            networks.append(item)
            continue
        try:
            networks.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an IP address or CIDR block") from exc
    return networks


NetworkList = Annotated[list[IPNetwork], NoDecode]
StringList = Annotated[list[str], NoDecode]
