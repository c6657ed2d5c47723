"""What a limit is: named policies of one or more quotas, the identity a request counts
against, endpoint groups with their own policy, and the draft-ietf-httpapi-ratelimit-headers-10
fields that describe them to the caller."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from limits import RateLimitItem, parse_many

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request counts against: a stable key (``account:<uuid>``) and the plan tier whose
    policy applies. Resolved by the domain layer; infra only sees these two strings."""

    key: str
    tier: str


@dataclass(frozen=True, slots=True)
class Quota:
    """One window of a policy: ``quota`` units per ``window`` seconds, named in headers.

    Every figure and header fragment is worked out once here, not per request: a quota is
    read on the hot path of every counted request."""

    name: str
    item: RateLimitItem
    quota: int = field(init=False, compare=False)
    window: int = field(init=False, compare=False)
    header_name: str = field(init=False, compare=False, repr=False)
    """The name as an RFC 9651 String, as both headers write it."""
    policy_item: str = field(init=False, compare=False, repr=False)
    """This quota's member of ``RateLimit-Policy``."""

    def __post_init__(self) -> None:
        quota, window = int(self.item.amount), int(self.item.get_expiry())
        header_name = _sf_string(self.name)
        object.__setattr__(self, "quota", quota)
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "header_name", header_name)
        object.__setattr__(self, "policy_item", f"{header_name};q={quota};w={window}")


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    name: str
    quotas: tuple[Quota, ...]

    @classmethod
    def parse(cls, name: str, spec: str) -> RateLimitPolicy:
        """``spec`` in the `limits` notation, e.g. ``600/minute`` or ``10/second;600/hour``.
        A single window keeps the bare policy name; several are told apart by their window."""
        items = parse_many(spec)
        if len(items) == 1:
            return cls(name, (Quota(name, items[0]),))
        return cls(name, tuple(Quota(f"{name}-{item.get_expiry()}s", item) for item in items))


@dataclass(frozen=True, slots=True)
class EndpointGroup:
    """Requests matching ``methods`` and ``path`` also count, per client IP, against ``policy``
    (for example login and registration, which must be strict whoever calls)."""

    policy: RateLimitPolicy
    path: re.Pattern[str]
    methods: frozenset[str] = frozenset({"POST"})

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and self.path.fullmatch(path) is not None


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Every policy of a deployment, built once from the settings."""

    anonymous: RateLimitPolicy
    tiers: dict[str, RateLimitPolicy]
    groups: tuple[EndpointGroup, ...] = ()
    write_cost: int = 1

    def for_identity(self, identity: Identity | None) -> RateLimitPolicy:
        if identity is None:
            return self.anonymous
        # A tier without a policy of its own (a plan added later) gets the anonymous one
        # rather than no limit at all.
        return self.tiers.get(identity.tier, self.anonymous)

    def groups_for(self, method: str, path: str) -> list[EndpointGroup]:
        return [group for group in self.groups if group.matches(method, path)]

    def cost(self, method: str) -> int:
        return 1 if method in SAFE_METHODS else self.write_cost


@dataclass(frozen=True, slots=True)
class QuotaState:
    """What the caller has left of one quota after this request."""

    quota: Quota
    remaining: int
    reset_seconds: int


def _sf_string(value: str) -> str:
    # Policy names come from settings and code (letters, digits, dashes), never from a request;
    # escaping keeps the field valid whatever an operator names them.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def policy_header(quotas: Iterable[Quota]) -> str:
    """``RateLimit-Policy``: an RFC 9651 List of ``"name";q=<units>;w=<seconds>``."""
    return ", ".join([q.policy_item for q in quotas])


def ratelimit_header(states: Sequence[QuotaState]) -> str:
    """``RateLimit``: an RFC 9651 List of ``"name";r=<remaining>;t=<seconds to reset>``."""
    return ", ".join(
        [
            f"{s.quota.header_name};r={max(0, s.remaining)};t={max(0, s.reset_seconds)}"
            for s in states
        ]
    )


def whole_seconds(seconds: float) -> int:
    """Delta-seconds for headers: never 0 while something is still pending."""
    return max(1, math.ceil(seconds)) if seconds > 0 else 0
