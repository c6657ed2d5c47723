"""The peer app: the stack a typical team builds with the popular FastAPI add-ons, serving the
same v2 routes as chainconsult on chainconsult's own tables.

- FastAPI with Pydantic response models, SQLAlchemy 2 async on psycopg 3 (pool sized like
  chainconsult's defaults: 20 + 10 overflow, pre-ping).
- fastapi-cache2 on Redis: ``@cache(expire=60)`` on the expert list and detail.
- slowapi with Redis storage: ``PEER_RATE_LIMIT`` on every route (SlowAPIMiddleware),
  ``PEER_LOGIN_RATE_LIMIT`` on login.
- CORSMiddleware, and the ``secure`` library's middleware as its README shows for FastAPI.
- Login: argon2-cffi verifies chainconsult's stored hash and the peer issues a stateless JWT
  (PyJWT, HS256, ``sub`` = account id), as FastAPI's own security tutorial does; ``/me`` and
  proposals decode it and load the account by id.

Where it does less than chainconsult, on purpose (a typical app): a proposal writes no in-app
notification and queues no email; no cache is cleared on a proposal, because no cached
response contains proposals (chainconsult invalidates nothing on a new proposal either).
Invite-only projects are not special-cased.

Environment: PEER_DATABASE_URL (required), PEER_REDIS_URL, PEER_SECRET_KEY, PEER_RATE_LIMIT,
PEER_LOGIN_RATE_LIMIT, PEER_ALLOWED_ORIGINS (JSON list), PEER_KEY_PREFIX (``peer``: Redis keys
start with ``peer-cache:`` and ``LIMITS:LIMITER/peer-rl/``)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from bench.peer import models
from bench.peer.schemas import (
    AccountOut,
    ExpertDetail,
    ExpertPage,
    ExpertSummary,
    LoginRequest,
    Money,
    ProposalIn,
    ProposalOut,
    Rating,
    Review,
    Token,
)
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_cache import FastAPICache
from fastapi_cache.backends.redis import RedisBackend
from fastapi_cache.decorator import cache
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis import asyncio as aioredis
from secure import Secure
from secure.middleware import SecureASGIMiddleware
from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded
from slowapi.middleware import SlowAPIMiddleware
from slowapi.util import get_remote_address
from sqlalchemy import func, select, text, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PEER_")

    database_url: str
    redis_url: str = "redis://127.0.0.1:6379/0"
    secret_key: str = "peer-benchmark-secret-change-me-0123456789"
    rate_limit: str = "100000/minute"
    login_rate_limit: str = "100000/minute"
    allowed_origins: list[str] = ["http://localhost:3000"]
    access_token_minutes: int = 720
    key_prefix: str = "peer"


settings = Settings()  # type: ignore[call-arg]  # database_url comes from the environment

engine = create_async_engine(
    settings.database_url.replace("postgresql://", "postgresql+psycopg://", 1),
    pool_size=20,
    max_overflow=10,
    pool_pre_ping=True,
)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_db() -> AsyncIterator[AsyncSession]:
    async with SessionLocal() as session:
        yield session


DB = Annotated[AsyncSession, Depends(get_db)]

limiter = Limiter(
    key_func=get_remote_address,
    default_limits=[settings.rate_limit],
    storage_uri=settings.redis_url,
    key_prefix=f"{settings.key_prefix}-rl",
)
password_hasher = PasswordHasher()
# Verified against when the email is unknown, so that answer takes as long as a wrong password.
DUMMY_HASH = password_hasher.hash("dummy password for unknown accounts")


def request_key_builder(
    func: Callable[..., Any],
    namespace: str = "",
    *,
    request: Request | None = None,
    response: Response | None = None,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
) -> str:
    # fastapi-cache2's default key hashes repr() of every argument, and the per-request DB
    # session in there makes every key unique (never a hit): key on the URL instead.
    assert request is not None
    query = sorted(request.query_params.multi_items())
    digest = hashlib.md5(f"{request.url.path}?{query}".encode()).hexdigest()
    return f"{namespace}:{func.__name__}:{digest}"


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    redis = aioredis.from_url(settings.redis_url)
    FastAPICache.init(
        RedisBackend(redis), prefix=f"{settings.key_prefix}-cache", key_builder=request_key_builder
    )
    yield
    FastAPICache.reset()
    await redis.aclose()
    await engine.dispose()


app = FastAPI(title="peer", lifespan=lifespan)
app.state.limiter = limiter
app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]
app.add_middleware(SlowAPIMiddleware)
app.add_middleware(
    CORSMiddleware,
    allow_origins=settings.allowed_origins,
    allow_credentials=True,
    allow_methods=["*"],
    allow_headers=["*"],
)
app.add_middleware(SecureASGIMiddleware, secure=Secure.with_default_headers())
# Routes go on the app itself, not on an APIRouter: SlowAPIMiddleware finds a route's endpoint
# in app.routes, where FastAPI 0.165 lists an included router as one entry without an
# endpoint, so the default limit would silently apply to nothing.

Sort = Literal["rating", "rate", "newest"]
SORT_COLUMNS = {
    "rating": (models.ExpertProfile.rating_avg, True),
    "rate": (models.ExpertProfile.hourly_rate_amount, False),
    "newest": (models.ExpertProfile.approved_at, True),
}


def to_summary(p: models.ExpertProfile) -> dict[str, Any]:
    return {
        "id": p.id,
        "display_name": p.display_name,
        "headline": p.headline,
        "skills": p.skills,
        "chains": p.chains,
        "hourly_rate": Money(amount=p.hourly_rate_amount, currency=p.hourly_rate_currency),  # type: ignore[arg-type]
        "years_experience": p.years_experience,
        "rating": Rating(average=p.rating_avg, count=p.rating_count),
        "approved_at": p.approved_at,
    }


def sort_value(p: models.ExpertProfile, sort: Sort) -> str:
    if sort == "rating":
        return str(p.rating_avg)
    if sort == "rate":
        return str(p.hourly_rate_amount)
    return p.approved_at.isoformat()


def encode_cursor(sort: Sort, value: str, expert_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(json.dumps([sort, value, str(expert_id)]).encode()).decode()


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, uuid.UUID]:
    try:
        kind, raw, expert_id = json.loads(base64.urlsafe_b64decode(cursor))
        if kind != sort:
            raise ValueError(kind)
        value = dt.datetime.fromisoformat(raw) if sort == "newest" else Decimal(raw)
        return value, uuid.UUID(expert_id)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise HTTPException(400, "Invalid cursor") from exc


@app.get("/api/v2/experts", response_model=ExpertPage)
@cache(expire=60)
async def list_experts(
    db: DB,
    skill: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies query defaults
    chain: Annotated[list[str], Query()] = [],  # noqa: B006
    q: str | None = None,
    min_rating: Annotated[Decimal | None, Query(ge=0, le=5)] = None,
    max_rate: Annotated[Decimal | None, Query(gt=0)] = None,
    currency: str | None = None,
    sort: Sort = "rating",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> ExpertPage:
    P = models.ExpertProfile
    stmt = select(P)
    if skill:
        stmt = stmt.where(P.skills.contains(skill))
    if chain:
        stmt = stmt.where(P.chains.contains(chain))
    if q:
        stmt = stmt.where(P.search.bool_op("@@")(func.websearch_to_tsquery("english", q)))
    if min_rating is not None:
        stmt = stmt.where(P.rating_avg >= min_rating)
    if max_rate is not None:
        stmt = stmt.where(P.hourly_rate_amount <= max_rate)
        currency = currency or "USD"
    if currency:
        stmt = stmt.where(P.hourly_rate_currency == currency)
    column, descending = SORT_COLUMNS[sort]
    if cursor:
        after = tuple_(column, P.id)
        position = decode_cursor(cursor, sort)
        stmt = stmt.where(after < position if descending else after > position)
    order = (column.desc(), P.id.desc()) if descending else (column.asc(), P.id.asc())
    rows = (await db.scalars(stmt.order_by(*order).limit(limit + 1))).all()
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(sort, sort_value(last, sort), last.id)
    return ExpertPage(
        data=[ExpertSummary(**to_summary(p)) for p in rows[:limit]], next_cursor=next_cursor
    )


EVM_CHAINS = frozenset({"ethereum", "polygon", "arbitrum", "optimism", "base", "avalanche", "bnb"})


@app.get("/api/v2/experts/{expert_id}", response_model=ExpertDetail)
@cache(expire=60)
async def get_expert(expert_id: uuid.UUID, db: DB) -> ExpertDetail:
    profile = await db.get(models.ExpertProfile, expert_id)
    if profile is None:
        raise HTTPException(404, "Expert not found")
    counts = dict(
        (
            await db.execute(
                select(models.Review.rating, func.count())
                .where(models.Review.expert_id == expert_id)
                .group_by(models.Review.rating)
            )
        ).all()
    )
    reviews = await db.scalars(
        select(models.Review)
        .where(models.Review.expert_id == expert_id)
        .order_by(models.Review.created_at.desc(), models.Review.id.desc())
        .limit(10)
    )
    # The wallet on the profile counts once its expert proved it by Sign-In with Ethereum.
    chain, proved = (
        await db.execute(
            text(
                "SELECT p.wallet_chain, EXISTS (SELECT FROM account_wallets w WHERE "
                "w.account_id = p.id AND lower(w.address) = lower(p.wallet_address)) "
                "FROM expert_profiles p WHERE p.id = :id"
            ),
            {"id": expert_id},
        )
    ).one()
    return ExpertDetail(
        **to_summary(profile),
        bio=profile.bio,
        portfolio_links=profile.portfolio_links,
        rating_distribution={str(star): counts.get(star, 0) for star in range(5, 0, -1)},
        recent_reviews=[Review.model_validate(r) for r in reviews],
        payout_wallet_verified=chain in EVM_CHAINS and bool(proved),
    )


@app.post("/api/v2/auth/login", response_model=Token)
@limiter.limit(settings.login_rate_limit)
async def login(request: Request, body: LoginRequest, db: DB) -> Token:
    account = await db.scalar(
        select(models.Account).where(func.lower(models.Account.email) == body.email.lower())
    )
    stored = account.password_hash if account and account.is_active else DUMMY_HASH
    try:
        # argon2 takes ~50 ms of CPU: keep it off the event loop.
        await run_in_threadpool(password_hasher.verify, stored, body.password)
    except VerificationError:
        account = None
    if account is None or stored == DUMMY_HASH:
        raise HTTPException(401, "Incorrect email or password")
    expires_in = settings.access_token_minutes * 60
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in)
    claims = {"sub": str(account.id), "exp": expires}
    token = jwt.encode(claims, settings.secret_key, algorithm="HS256")
    return Token(access_token=token, expires_in=expires_in)


async def current_account(
    db: DB, credentials: Annotated[HTTPAuthorizationCredentials, Depends(HTTPBearer())]
) -> models.Account:
    unauthorized = HTTPException(401, "Invalid token", headers={"WWW-Authenticate": "Bearer"})
    try:
        claims = jwt.decode(credentials.credentials, settings.secret_key, algorithms=["HS256"])
        account = await db.get(models.Account, uuid.UUID(claims["sub"]))
    except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
        raise unauthorized from exc
    if account is None or not account.is_active:
        raise unauthorized
    return account


CurrentAccount = Annotated[models.Account, Depends(current_account)]


@app.get("/api/v2/auth/me", response_model=AccountOut)
async def me(account: CurrentAccount) -> models.Account:
    return account


@app.post("/api/v2/projects/{project_id}/proposals", status_code=201, response_model=ProposalOut)
async def create_proposal(
    project_id: uuid.UUID, body: ProposalIn, account: CurrentAccount, db: DB
) -> ProposalOut:
    if account.role != "expert":
        raise HTTPException(403, "Only approved experts can propose")
    project = await db.get(models.Project, project_id)
    if project is None:
        raise HTTPException(404, "Project not found")
    if project.client_id == account.id:
        raise HTTPException(403, "You cannot propose on your own project")
    if project.status != "open":
        raise HTTPException(409, f"The project is {project.status}")
    if body.price.currency != project.budget_currency:
        raise HTTPException(422, f"Price must be in {project.budget_currency}")
    proposal = models.Proposal(
        project_id=project.id,
        expert_id=account.id,
        cover_letter=body.cover_letter,
        price_amount=body.price.amount,
        price_currency=body.price.currency,
        estimated_days=body.estimated_days,
    )
    db.add(proposal)
    try:
        await db.commit()
    except IntegrityError as exc:
        # The partial unique index uq_proposals_one_active: one active proposal per project.
        await db.rollback()
        raise HTTPException(409, "You already have an active proposal on this project") from exc
    await db.refresh(proposal)
    return ProposalOut(
        id=proposal.id,
        project_id=proposal.project_id,
        expert_id=proposal.expert_id,
        cover_letter=proposal.cover_letter,
        price=body.price,
        estimated_days=proposal.estimated_days,
        status=proposal.status,
        created_at=proposal.created_at,
        updated_at=proposal.updated_at,
    )
