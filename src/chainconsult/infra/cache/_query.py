"""The typed wrapper for caching query results: a key from the arguments, a TTL, tags, and a
codec from the result type.

Values are stored as JSON produced by pydantic from the declared type, never pickled: a value
a user wrote (a bio, a project title) can only ever come back as data of that type. The key
carries the query's version and a fingerprint of the type's JSON schema, so a deploy that
changes a result's shape reads and writes new keys and never decodes an old shape."""

from __future__ import annotations

import dataclasses
import decimal
import functools
import hashlib
import inspect
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

import orjson
import structlog
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.infra.cache._cache import Cache
from chainconsult.infra.cache._loads import Loaded
from chainconsult.infra.cache._session import cache_of, has_pending_invalidation

log = structlog.get_logger(__name__)

T = TypeVar("T")
P = ParamSpec("P")


class Codec(Generic[T]):
    """Encodes values of one type to JSON bytes and back. ``bytes`` passes through as is
    (already rendered JSON); its fingerprint then comes from ``schema_of``, the type the
    bytes are a rendering of."""

    def __init__(self, result_type: Any, schema_of: Any = None) -> None:
        self._raw = result_type is bytes
        self._adapter: TypeAdapter[T] = TypeAdapter(result_type)
        shape = schema_of if schema_of is not None else result_type
        self.fingerprint = _fingerprint(TypeAdapter(shape), shape)

    def encode(self, value: T) -> bytes:
        if self._raw:
            assert isinstance(value, bytes)
            return value
        return self._adapter.dump_json(value)

    def decode(self, payload: bytes) -> T:
        if self._raw:
            return typing.cast(T, payload)
        return self._adapter.validate_json(payload)


def _fingerprint(adapter: TypeAdapter[Any], result_type: Any) -> str:
    try:
        shape: Any = adapter.json_schema(mode="serialization")
    except Exception:
        # Types without a JSON schema still get a key that changes with their definition.
        shape = repr(result_type)
    return hashlib.sha256(orjson.dumps(shape, option=orjson.OPT_SORT_KEYS)).hexdigest()[:8]


def _canonical(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"cannot build a cache key from {type(value).__name__}")


def key_digest(arguments: Mapping[str, Any] | Sequence[Any]) -> str:
    """A stable digest of query arguments (same values, same digest, in every process)."""
    encoded = orjson.dumps(
        arguments,
        default=_canonical,
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
    )
    return hashlib.sha256(encoded).hexdigest()[:32]


@dataclasses.dataclass
class CachedQuery(Generic[T]):
    """One cacheable query. ``name`` is what metrics and health report it as."""

    name: str
    result_type: Any
    ttl: float
    """Seconds a value may be served after it was loaded (unless invalidated sooner)."""
    version: int = 1
    """Bump when the meaning of a result changes without its shape changing."""
    cache_none: bool = True
    """False: a None result is not stored (e.g. unknown login tokens, which anyone can mint)."""
    local_only: bool = False
    """True: L1 only, never Redis (per-process facts such as this process's health)."""
    shared_only: bool = False
    """True: Redis only, never L1 (facts every process must see change at once, such as a
    revoked login); without a usable Redis, every call loads."""
    schema_of: Any = None
    """For ``bytes`` results: the type they render, whose schema versions the key."""

    def __post_init__(self) -> None:
        self._codec: Codec[T] | None = None

    @property
    def codec(self) -> Codec[T]:
        if self._codec is None:
            self._codec = Codec(self.result_type, self.schema_of)
        return self._codec

    def key(self, arguments: Mapping[str, Any] | Sequence[Any]) -> str:
        return f"v{self.version}.{self.codec.fingerprint}:{key_digest(arguments)}"

    async def get(
        self,
        cache: Cache | None,
        *,
        arguments: Mapping[str, Any] | Sequence[Any] = (),
        tags: Iterable[str] = (),
        load: Callable[[], Awaitable[T]],
    ) -> T:
        """The cached result for ``arguments``, loading it with ``load`` on a miss."""
        if cache is None or not cache.enabled:
            return await load()
        codec = self.codec

        async def produce() -> Loaded:
            value = await load()
            return Loaded(codec.encode(value), cacheable=value is not None or self.cache_none)

        payload = await cache.get_or_load(
            name=self.name,
            key=self.key(arguments),
            tags=tuple(tags),
            ttl=self.ttl,
            load=produce,
            local_only=self.local_only,
            shared_only=self.shared_only,
        )
        try:
            return codec.decode(payload)
        except ValidationError:
            # Only a cache written by a buggy build gets here; the database has the truth.
            log.error("cache_value_undecodable", cache=self.name)
            return await load()


class UsesSession(Protocol):
    """What a cached method's owner (a repository or service) must have."""

    session: AsyncSession


S = TypeVar("S", bound=UsesSession)


def cached(
    name: str,
    *,
    ttl: float,
    tags: Callable[..., Iterable[str]] | None = None,
    version: int = 1,
    cache_none: bool = True,
    shared_only: bool = False,
) -> Callable[
    [Callable[Concatenate[S, P], Awaitable[T]]], Callable[Concatenate[S, P], Awaitable[T]]
]:
    """Cache an async method of a repository or service by its arguments.

    ``tags`` gets the method's arguments (without ``self``) and names what invalidates the
    result. The cache is the one attached to ``self.session``; inside a transaction that has
    already queued an invalidation of one of these tags, the method runs uncached (it could
    see the transaction's own uncommitted rows, which must not reach other readers)::

        @cached("experts.detail", ttl=300, tags=lambda expert_id: [f"expert:{expert_id}"])
        async def detail(self, expert_id: uuid.UUID) -> ExpertOut | None: ...
    """

    def decorate(
        method: Callable[Concatenate[S, P], Awaitable[T]],
    ) -> Callable[Concatenate[S, P], Awaitable[T]]:
        signature = inspect.signature(method)
        owner, *positional = signature.parameters
        # Only for plain parameters: with *args or keyword-only ones, bind() decides.
        by_position = all(
            parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
            for parameter in signature.parameters.values()
        )
        query: CachedQuery[T] | None = None

        def query_for() -> CachedQuery[T]:
            nonlocal query
            if query is None:
                # Resolved on first use: annotations may name types defined after the method.
                result_type = typing.get_type_hints(method)["return"]
                query = CachedQuery(
                    name, result_type, ttl, version, cache_none, shared_only=shared_only
                )
            return query

        @functools.wraps(method)
        async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
            cache = cache_of(self.session)
            tag_list = tuple(tags(*args, **kwargs)) if tags is not None else ()
            if cache is None or has_pending_invalidation(self.session, tag_list):
                return await method(self, *args, **kwargs)
            arguments: dict[str, Any]
            if by_position and not kwargs and len(args) == len(positional):
                # Every argument given by position, the usual call: the same mapping as
                # Signature.bind's, which cost about 4 % of a cached authenticated read.
                arguments = dict(zip(positional, args, strict=True))
            else:
                bound = signature.bind(self, *args, **kwargs)
                bound.apply_defaults()
                arguments = {k: v for k, v in bound.arguments.items() if k != owner}
            return await query_for().get(
                cache,
                arguments=arguments,
                tags=tag_list,
                load=lambda: method(self, *args, **kwargs),
            )

        return wrapper

    return decorate
