"""The home page, the expert directory and expert profiles, read through the same cached
queries as `GET /api/v2/experts` (the page and the API share their cache entries). For an
anonymous visitor the rendered page itself is cached too, with an ETag, and a repeat of the
same URL is answered by the CachedReadShortcut like the API's reads."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from pydantic import TypeAdapter, ValidationError
from starlette.responses import RedirectResponse, Response

from chainconsult.accounts.visit import PageVisit, Visit
from chainconsult.accounts.wallets import wallets_tag
from chainconsult.errors import NotFound
from chainconsult.experts.endpoints import (
    ChainFilter,
    MaxRate,
    MinRating,
    RateCurrency,
    SearchText,
    SkillFilter,
    SortOrder,
    directory_filters,
)
from chainconsult.experts.schemas import DirectoryFilters, ExpertDetail, ExpertSort, ExpertSummary
from chainconsult.experts.service import (
    DIRECTORY_CACHE_TTL_S,
    DIRECTORY_PAGE,
    DIRECTORY_TAG,
    EXPERT_PAGE,
    ExpertDirectory,
    expert_tag,
)
from chainconsult.experts.vocabulary import Chain, Currency, Skill
from chainconsult.infra.cache import AppCache, Cache, body_query, cached_body
from chainconsult.infra.pagination import DEFAULT_PAGE_SIZE, Page
from chainconsult.infra.resources import resources_of
from chainconsult.web import TEMPLATES_DIGEST
from chainconsult.web.forms import FormState
from chainconsult.web.layout import HTML, navigation, render_html
from chainconsult.web.routing import page_router

router = page_router()

DIRECTORY_HTML = body_query("pages.experts.list", Page[ExpertSummary], ttl=DIRECTORY_CACHE_TTL_S)
PROFILE_HTML = body_query("pages.experts.detail", ExpertDetail, ttl=DIRECTORY_CACHE_TTL_S)
FEATURED = 6
"""Experts on the home page: the best rated."""

_PARAMETERS: dict[str, TypeAdapter[Any]] = {
    "skill": TypeAdapter(SkillFilter),
    "chain": TypeAdapter(ChainFilter),
    "q": TypeAdapter(SearchText),
    "min_rating": TypeAdapter(MinRating),
    "max_rate": TypeAdapter(MaxRate),
    "currency": TypeAdapter(RateCurrency),
    "sort": TypeAdapter(SortOrder),
}
"""The API's own parameter types (experts/endpoints.py), so both refuse the same values."""
_REPEATED = frozenset({"skill", "chain"})
_CURSOR_MAX = 512

VOCABULARY: dict[str, Any] = {
    "skills": [(skill.value, skill.value) for skill in Skill],
    "chains": [(chain.value, chain.value) for chain in Chain],
    "currencies": [(currency.value, currency.value) for currency in Currency],
    "sorts": [(sort.value, sort.value) for sort in ExpertSort],
}


async def _page_data(
    cache: Cache, directory: ExpertDirectory, filters: DirectoryFilters, cursor: str | None
) -> Page[ExpertSummary]:
    """A directory page from the API's cache entry (its arguments are the API's)."""

    async def render() -> bytes:
        page = await directory.search(filters, cursor, DEFAULT_PAGE_SIZE)
        return page.model_dump_json().encode()

    body = await DIRECTORY_PAGE.get(
        cache,
        arguments={"filters": filters, "cursor": cursor, "limit": DEFAULT_PAGE_SIZE},
        tags=[DIRECTORY_TAG],
        load=render,
    )
    return Page[ExpertSummary].model_validate_json(body)


def _layout_key(request: Request) -> dict[str, Any]:
    # What an anonymous page's HTML depends on besides its data: the templates and which
    # pages the header links to.
    entries = navigation(request.scope["app"], None)
    return {"templates": TEMPLATES_DIGEST, "navigation": [entry.path for entry in entries]}


async def _respond(
    visit: PageVisit,
    cache: Cache,
    name: str,
    context: Callable[[], Awaitable[Mapping[str, Any]]],
    *,
    query: Any,
    arguments: Mapping[str, Any],
    tags: list[str],
) -> Response:
    """The page for a member; for an anonymous visitor the cached page with its ETag.
    ``context`` reads the page's data: for an anonymous visitor only when the page is not
    cached already (decoding a cached directory page cost 40 % of a cached page's answer)."""
    if visit.principal is not None:
        return await visit.render(name, **(await context()))
    request = visit.request

    async def render() -> bytes:
        return render_html(request, name, await context(), viewer=None).encode()

    return await cached_body(
        request,
        query,
        cache=cache,
        arguments={**arguments, **_layout_key(request)},
        tags=tags,
        render=render,
        media_type=HTML,
        # A browser's copy was made for someone logged out (or in): it depends on the cookie.
        vary="Cookie",
        repeatable=True,
    )


def _read_filters(request: Request) -> tuple[dict[str, Any], FormState]:
    """The filters of the query string, checked by the API's parameter types; the form as
    typed, with an error next to each refused field."""
    params = request.query_params
    form = FormState(
        values={
            name: params.getlist(name) if name in _REPEATED else params.get(name, "")
            for name in _PARAMETERS
        }
    )
    valid: dict[str, Any] = {}
    for name, adapter in _PARAMETERS.items():
        raw: Any = params.getlist(name) if name in _REPEATED else params.get(name)
        try:
            valid[name] = adapter.validate_python(raw)
        except ValidationError as exc:
            valid[name] = [] if name in _REPEATED else None
            form.errors[name] = "; ".join(str(e["msg"]) for e in exc.errors())
    return valid, form


def _without_empty(request: Request) -> str | None:
    """The URL without empty parameters (what a GET form sends for fields left blank), or None
    when there are none: one URL, and one cache entry, per search."""
    items = request.query_params.multi_items()
    kept = [(name, value) for name, value in items if value != ""]
    if len(kept) == len(items):
        return None
    return request.url.path + (f"?{urlencode(kept)}" if kept else "")


@router.get("/")
async def home(visit: Visit, cache: AppCache) -> Response:
    directory = ExpertDirectory(visit.session)
    featured = await _page_data(cache, directory, DirectoryFilters(), None)
    return await visit.render(
        "home.html",
        experts=featured.data[:FEATURED],
        notice=visit.request.query_params.get("notice"),
        **VOCABULARY,
    )


@router.get("/experts")
async def directory_page(visit: Visit, cache: AppCache) -> Response:
    request = visit.request
    canonical = _without_empty(request)
    if canonical is not None:
        return RedirectResponse(canonical, status_code=303)
    valid, form = _read_filters(request)
    cursor = request.query_params.get("cursor") or None
    if cursor is not None and len(cursor) > _CURSOR_MAX:
        cursor = None
    directory = ExpertDirectory(visit.session)
    if form.failed:
        empty = Page[ExpertSummary](data=[])
        return await visit.render(
            "experts/directory.html", status_code=422, form=form, page=empty, **VOCABULARY
        )
    filters = directory_filters(**valid)

    async def context() -> dict[str, Any]:
        page = await _page_data(cache, directory, filters, cursor)
        next_url = None
        if page.next_cursor:
            kept = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
            next_url = "/experts?" + urlencode([*kept, ("cursor", page.next_cursor)])
        return {
            "form": form,
            "page": page,
            "filters": filters,
            "next_url": next_url,
            "first_url": None if cursor is None else _first_page(request),
            **VOCABULARY,
        }

    return await _respond(
        visit,
        cache,
        "experts/directory.html",
        context,
        query=DIRECTORY_HTML,
        arguments={"filters": filters, "cursor": cursor},
        tags=[DIRECTORY_TAG],
    )


def _first_page(request: Request) -> str:
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    return "/experts" + (f"?{urlencode(kept)}" if kept else "")


async def _profile(visit: PageVisit, expert_id: uuid.UUID) -> ExpertDetail:
    """A profile from the API's cache entry (404 for no such expert)."""
    directory = ExpertDirectory(visit.session)

    async def render() -> bytes:
        return (await directory.get(expert_id)).model_dump_json().encode()

    cache = resources_of(visit.request).cache
    body = await EXPERT_PAGE.get(
        cache,
        arguments=[expert_id],
        tags=[expert_tag(expert_id), wallets_tag(expert_id)],
        load=render,
    )
    return ExpertDetail.model_validate_json(body)


async def expert_names(visit: PageVisit, expert_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names of experts by id, from their cached profiles (an erased one has none)."""
    names: dict[uuid.UUID, str] = {}
    for expert_id in dict.fromkeys(expert_ids):
        try:
            names[expert_id] = (await _profile(visit, expert_id)).display_name
        except NotFound:
            continue
    return names


@router.get("/experts/{expert_id:uuid}")
async def profile_page(expert_id: uuid.UUID, visit: Visit, cache: AppCache) -> Response:
    async def context() -> dict[str, Any]:
        return {"expert": await _profile(visit, expert_id)}  # 404 for no such expert

    return await _respond(
        visit,
        cache,
        "experts/profile.html",
        context,
        query=PROFILE_HTML,
        arguments={"expert_id": expert_id},
        tags=[expert_tag(expert_id), wallets_tag(expert_id)],
    )
