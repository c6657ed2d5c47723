"""Done-when 5: EXPLAIN on a 10,000-row data set. Every filter and sort of the directory, the
project lists and the other paged lists uses its index: no sequential scan of a big table, no
sort of the whole result where an index gives the order. The plans are those of the very
statements the repositories send (captured, then EXPLAINed)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from chainconsult.admin.repository import AuditRepository
from chainconsult.admin.schemas import AuditFilters
from chainconsult.applications.repository import ApplicationRepository
from chainconsult.experts.repository import ExpertRepository
from chainconsult.experts.schemas import DirectoryFilters, ExpertSort
from chainconsult.experts.vocabulary import Chain, Currency, Skill
from chainconsult.infra.db.engine import build_engine
from chainconsult.models.experts import ApplicationStatus
from chainconsult.notifications.repository import NotificationRepository
from chainconsult.projects.repository import ProjectRepository
from chainconsult.projects.schemas import ProjectFilters
from chainconsult.proposals.repository import ProposalRepository
from tests.conftest import MigratedDatabases, make_settings
from tests.infra.db.explain import Plan, plans_of

ROWS = 10_000
LATER = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def uid(kind: str, n: int) -> uuid.UUID:
    """The ids the seed SQL gives (md5(kind || n)::uuid), so tests can name rows."""
    import hashlib

    return uuid.UUID(hashlib.md5(f"{kind}{n}".encode()).hexdigest())


SEED = """
INSERT INTO accounts (id, email, password_hash, display_name, role, plan, is_active)
SELECT md5('expert' || n)::uuid, 'expert' || n || '@example.com', 'x', 'Expert ' || n,
       'expert', 'free', true
FROM generate_series(1, {rows}) n;

INSERT INTO accounts (id, email, password_hash, display_name, role, plan, is_active)
SELECT md5('client' || n)::uuid, 'client' || n || '@example.com', 'x', 'Client ' || n,
       'client', 'pro', true
FROM generate_series(1, 100) n;

-- One expert in a hundred is a Cairo/StarkNet specialist: the rare filter values.
INSERT INTO expert_profiles (id, display_name, headline, bio, skills, chains,
    hourly_rate_amount, hourly_rate_currency, years_experience, portfolio_links, approved_at,
    rating_avg, rating_count, rating_sum)
SELECT md5('expert' || n)::uuid, 'Expert ' || n,
       CASE WHEN n % 100 = 0 THEN 'Cairo prover engineer' ELSE 'Solidity engineer' END,
       'Builds and reviews smart contracts.',
       CASE WHEN n % 100 = 0 THEN ARRAY['cairo', 'zk-proofs']
            ELSE ARRAY['solidity', (ARRAY['defi', 'nft', 'rust', 'go'])[1 + n % 4]] END,
       CASE WHEN n % 100 = 0 THEN ARRAY['starknet']
            ELSE ARRAY['ethereum', (ARRAY['polygon', 'arbitrum', 'base'])[1 + n % 3]] END,
       50 + n % 300, CASE WHEN n % 10 = 0 THEN 'EUR' ELSE 'USD' END, 1 + n % 20, '{{}}',
       now() - make_interval(mins => n),
       CASE WHEN n % 7 = 0 THEN 0 ELSE 1 + n % 5 END, n % 7, (n % 7) * (1 + n % 5)
FROM generate_series(1, {rows}) n;

INSERT INTO projects (id, client_id, title, description, chains, skills, budget_min,
    budget_max, budget_currency, deadline, visibility, status, expert_id, created_at,
    updated_at)
SELECT md5('project' || n)::uuid, md5('client' || (1 + n % 100))::uuid, 'Project ' || n,
       'Audit and build.',
       CASE WHEN n % 100 = 0 THEN ARRAY['starknet'] ELSE ARRAY['ethereum'] END,
       CASE WHEN n % 100 = 0 THEN ARRAY['cairo'] ELSE ARRAY['solidity'] END,
       1000, 5000, 'USD', current_date + 30,
       CASE WHEN n % 10 = 0 THEN 'invite_only' ELSE 'public' END,
       (ARRAY['open', 'in_progress', 'completed', 'cancelled'])[1 + n % 4],
       CASE WHEN n % 4 IN (1, 2) THEN md5('expert' || (1 + n % {rows}))::uuid END,
       now() - make_interval(mins => n), now()
FROM generate_series(1, {rows}) n;

INSERT INTO project_invitations (project_id, expert_id)
SELECT p.id, md5('expert' || (1 + (n * 7 + k) % {rows}))::uuid
FROM generate_series(1, {rows}) n
JOIN projects p ON p.id = md5('project' || n)::uuid AND p.visibility = 'invite_only'
CROSS JOIN generate_series(0, 1) k;

INSERT INTO proposals (id, project_id, expert_id, cover_letter, price_amount, price_currency,
    estimated_days, status, created_at, updated_at)
SELECT md5('proposal' || n)::uuid, md5('project' || (1 + n % {rows}))::uuid,
       md5('expert' || n)::uuid, 'I can do it.', 3000, 'USD', 10, 'pending',
       now() - make_interval(secs => n), now()
FROM generate_series(1, {rows}) n;

INSERT INTO reviews (id, project_id, expert_id, reviewer_id, rating, text, created_at)
SELECT md5('review' || p.id)::uuid, p.id, p.expert_id, p.client_id, 1 + abs(hashtext(p.title)) % 5,
       'Good work.', p.created_at + interval '1 day'
FROM projects p WHERE p.status = 'completed';

INSERT INTO notifications (id, recipient_id, kind, payload, created_at, read_at)
SELECT md5('notification' || n)::uuid, md5('client' || (1 + n % 100))::uuid,
       'proposal_received', '{{}}', now() - make_interval(secs => n),
       CASE WHEN n % 3 = 0 THEN NULL ELSE now() END
FROM generate_series(1, {rows}) n;

INSERT INTO expert_applications (id, account_id, revision, status, headline, bio, skills,
    chains, hourly_rate_amount, hourly_rate_currency, years_experience, portfolio_links,
    created_at, updated_at)
SELECT md5('application' || n)::uuid, md5('expert' || n)::uuid, 1,
       (ARRAY['submitted', 'under_review', 'approved', 'rejected'])[1 + n % 4],
       'Solidity engineer', 'Builds contracts.', ARRAY['solidity'], ARRAY['ethereum'], 100,
       'USD', 5, '{{}}', now() - make_interval(mins => n), now()
FROM generate_series(1, {rows}) n;

INSERT INTO audit_log (id, occurred_at, actor_id, action, resource_type, resource_id, details)
SELECT md5('audit' || n)::uuid, now() - make_interval(secs => n),
       md5('client' || (1 + n % 100))::uuid,
       (ARRAY['auth.login', 'project.cancelled', 'plan.changed', 'application.decided'])[1 + n % 4],
       'project', md5('project' || n)::text, '{{}}'
FROM generate_series(1, {rows}) n;
"""


@pytest.fixture(scope="module")
def explain_database(migrated_databases: MigratedDatabases) -> Iterator[str]:
    """A database of its own, migrated and seeded once for the module, then dropped."""
    rendered = migrated_databases.create("cc_explain")
    try:
        with psycopg.connect(rendered.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(SEED.format(rows=ROWS))  # type: ignore[arg-type]
            # What autovacuum does to a live database: statistics, and GIN pending lists
            # merged into the index (until then the planner rightly prices GIN scans high).
            conn.execute("VACUUM ANALYZE")
        yield rendered
    finally:
        migrated_databases.drop(rendered)


@pytest.fixture
async def engine(explain_database: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(make_settings(explain_database, tmp_path).database)
    yield engine
    await engine.dispose()


async def only_plan(engine: AsyncEngine, call: Callable[[AsyncSession], Awaitable[Any]]) -> Plan:
    plans = await plans_of(engine, call)
    assert len(plans) == 1, [plan.statement for plan in plans]
    return plans[0]


def assert_uses(plan: Plan, index: str, *, sorted_by_index: bool = True) -> None:
    """``index`` may name several acceptable indexes, separated by ``|``: for a filter that
    keeps many rows, walking the sort's index and skipping non-matches is as good a plan."""
    assert plan.indexes() & set(index.split("|")), str(plan)
    assert not plan.seq_scanned(), str(plan)
    if sorted_by_index:
        assert plan.sorts() == 0, str(plan)


def directory(**filters: Any) -> DirectoryFilters:
    return DirectoryFilters(**filters)


DIRECTORY_CASES: list[tuple[str, DirectoryFilters, tuple[Any, uuid.UUID] | None, str, bool]] = [
    (
        "sort by rating",
        directory(sort=ExpertSort.rating),
        None,
        "ix_expert_profiles_rating_sort",
        True,
    ),
    ("sort by rate", directory(sort=ExpertSort.rate), None, "ix_expert_profiles_rate_sort", True),
    (
        "sort by newest",
        directory(sort=ExpertSort.newest),
        None,
        "ix_expert_profiles_newest_sort",
        True,
    ),
    (
        "rating page after a cursor",
        directory(sort=ExpertSort.rating),
        (Decimal("3.00"), uid("expert", 5000)),
        "ix_expert_profiles_rating_sort",
        True,
    ),
    (
        "rate page after a cursor",
        directory(sort=ExpertSort.rate),
        (Decimal("120.00"), uid("expert", 5000)),
        "ix_expert_profiles_rate_sort",
        True,
    ),
    (
        "newest page after a cursor",
        directory(sort=ExpertSort.newest),
        (LATER, uid("expert", 5000)),
        "ix_expert_profiles_newest_sort",
        True,
    ),
    (
        "min_rating",
        directory(min_rating=Decimal("4.5")),
        None,
        "ix_expert_profiles_rating_sort",
        True,
    ),
    (
        "max_rate sorted by rate",
        directory(max_rate=Decimal("80"), currency=Currency.USD, sort=ExpertSort.rate),
        None,
        "ix_expert_profiles_rate_sort",
        True,
    ),
    # Rare values: the GIN indexes find the few rows; sorting those few is cheap.
    ("rare skill", directory(skills=(Skill.cairo,)), None, "ix_expert_profiles_skills", False),
    ("rare chain", directory(chains=(Chain.starknet,)), None, "ix_expert_profiles_chains", False),
    ("full-text query", directory(q="cairo prover"), None, "ix_expert_profiles_search", False),
]


@pytest.mark.parametrize(
    ("filters", "after", "index", "sorted_by_index"),
    [case[1:] for case in DIRECTORY_CASES],
    ids=[case[0] for case in DIRECTORY_CASES],
)
async def test_directory_filters_and_sorts_use_their_indexes(
    engine: AsyncEngine,
    filters: DirectoryFilters,
    after: tuple[Any, uuid.UUID] | None,
    index: str,
    sorted_by_index: bool,
) -> None:
    plan = await only_plan(
        engine, lambda s: ExpertRepository(s).page(filters, after=after, limit=21)
    )

    assert_uses(plan, index, sorted_by_index=sorted_by_index)


async def test_expert_detail_reads_use_the_reviews_index(engine: AsyncEngine) -> None:
    expert = uid("expert", 2)
    distribution = await only_plan(
        engine, lambda s: ExpertRepository(s).rating_distribution(expert)
    )
    recent = await only_plan(engine, lambda s: ExpertRepository(s).recent_reviews(expert, 10))
    profile = await plans_of(engine, lambda s: ExpertRepository(s).get(expert))

    assert_uses(distribution, "ix_reviews_expert_created", sorted_by_index=False)
    assert_uses(recent, "ix_reviews_expert_created")
    assert_uses(profile[0], "pk_expert_profiles")


PROJECT_CASES: list[tuple[str, Callable[[AsyncSession], Awaitable[Any]], str, bool]] = [
    (
        "open public projects",
        lambda s: ProjectRepository(s).open_public(ProjectFilters(), after=None, limit=21),
        "ix_projects_open_public",
        True,
    ),
    (
        "open public projects after a cursor",
        lambda s: ProjectRepository(s).open_public(
            ProjectFilters(), after=(LATER, uid("project", 1)), limit=21
        ),
        "ix_projects_open_public",
        True,
    ),
    (
        "open public projects with a rare skill",
        lambda s: ProjectRepository(s).open_public(
            ProjectFilters(skills=(Skill.cairo,)), after=None, limit=21
        ),
        "ix_projects_skills",
        False,
    ),
    (
        "a client's projects",
        lambda s: ProjectRepository(s).owned_by(
            uid("client", 7), ProjectFilters(), after=None, limit=21
        ),
        "ix_projects_client_created",
        True,
    ),
    (
        "a client's open projects (quota count)",
        lambda s: ProjectRepository(s).count_open(uid("client", 7)),
        "ix_projects_client_created",
        False,
    ),
    (
        "projects an expert is invited to",
        lambda s: ProjectRepository(s).invitations_of(
            uid("expert", 77), ProjectFilters(), after=None, limit=21
        ),
        "ix_project_invitations_expert_id",
        False,
    ),
    (
        "a project's proposals",
        lambda s: ProposalRepository(s).page(
            uid("project", 10), expert_id=None, after=None, limit=21
        ),
        "ix_proposals_project_created",
        True,
    ),
    (
        "notifications of a recipient",
        lambda s: NotificationRepository(s).page(
            uid("client", 3), unread_only=False, after=None, limit=21
        ),
        "ix_notifications_recipient_created",
        True,
    ),
    (
        "vetting queue by status",
        lambda s: ApplicationRepository(s).queue(
            status=ApplicationStatus.submitted, after=None, limit=21
        ),
        "ix_expert_applications_status_created|ix_expert_applications_created",
        True,
    ),
    (
        "vetting queue, every status",
        lambda s: ApplicationRepository(s).queue(status=None, after=None, limit=21),
        "ix_expert_applications_created",
        True,
    ),
    (
        "audit log, newest first",
        lambda s: AuditRepository(s).page(AuditFilters(), after=None, limit=21),
        "ix_audit_log_occurred",
        True,
    ),
    (
        "audit log of one actor",
        lambda s: AuditRepository(s).page(
            AuditFilters(actor_id=uid("client", 5)), after=None, limit=21
        ),
        "ix_audit_log_actor_occurred",
        True,
    ),
    (
        "audit log of one action",
        lambda s: AuditRepository(s).page(
            AuditFilters(action="plan.changed"), after=None, limit=21
        ),
        "ix_audit_log_action_occurred",
        True,
    ),
    (
        "audit log of one resource",
        lambda s: AuditRepository(s).page(
            AuditFilters(resource_type="project", resource_id=str(uid("project", 5))),
            after=None,
            limit=21,
        ),
        "ix_audit_log_resource",
        False,
    ),
]


@pytest.mark.parametrize(
    ("call", "index", "sorted_by_index"),
    [case[1:] for case in PROJECT_CASES],
    ids=[case[0] for case in PROJECT_CASES],
)
async def test_project_and_other_lists_use_their_indexes(
    engine: AsyncEngine,
    call: Callable[[AsyncSession], Awaitable[Any]],
    index: str,
    sorted_by_index: bool,
) -> None:
    plan = await only_plan(engine, call)

    assert_uses(plan, index, sorted_by_index=sorted_by_index)
