"""Who may propose has one home, ``proposal_checks`` (proposals/service.py); the submit
statement's SQL is built from it and the refusal a caller hears is worked out from it in
Python. Every case of the rule (project status, visibility, the caller's relation to the
project, role, approved profile, an active proposal already, the price's currency) goes
through both paths, on a real database, and both must agree; a rule changed in its home
changes both."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.accounts.service import Principal
from chainconsult.errors import ChainconsultError
from chainconsult.experts.vocabulary import Currency, Money
from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from chainconsult.models.accounts import Plan, Role
from chainconsult.models.projects import ProjectStatus, Visibility
from chainconsult.proposals import service
from chainconsult.proposals.repository import ProposedOn
from chainconsult.proposals.schemas import ProposalRequest
from chainconsult.proposals.service import ProposalService, Proposing, proposal_refusal
from tests.conftest import make_settings
from tests.market import libpq, query

RELATIONS = ("stranger", "invited", "owner", "assigned")
"""The caller and the project: no tie, invited, the project's client, its accepted expert."""
PROJECT_CURRENCY = "USD"
COVER_LETTER = "A proposal written by the rule table, long enough to pass."


@dataclass(frozen=True, slots=True)
class Case:
    status: ProjectStatus
    visibility: Visibility
    relation: str
    role: Role
    has_profile: bool
    has_active: bool
    currency: Currency


def every_case() -> Iterator[Case]:
    for values in itertools.product(
        ProjectStatus,
        Visibility,
        RELATIONS,
        Role,
        (False, True),
        (False, True),
        (Currency.USD, Currency.EUR),
    ):
        yield Case(*values)


Outcome = tuple[str, int, str, Any] | None
"""None: the proposal is written; else the problem's class, status, detail and fields."""


def outcome_of(error: ChainconsultError | None) -> Outcome:
    if error is None:
        return None
    return (type(error).__name__, error.status_code, error.detail, error.extensions)


@dataclass
class World:
    """The callers (one account per role and profile) and one project per case."""

    owner: uuid.UUID
    callers: dict[tuple[Role, bool], uuid.UUID]
    projects: dict[Case, uuid.UUID]

    def caller(self, case: Case) -> uuid.UUID:
        return self.callers[(case.role, case.has_profile)]


def _account(conn: psycopg.Connection[Any], role: Role, *, profile: bool) -> uuid.UUID:
    account_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO accounts (id, email, password_hash, display_name, role, plan, is_active) "
        "VALUES (%s, %s, 'x', 'Rule table', %s, 'free', true)",
        (account_id, f"rules-{account_id.hex}@example.com", role.value),
    )
    if profile:
        conn.execute(
            "INSERT INTO expert_profiles (id, display_name, headline, bio, skills, chains, "
            "hourly_rate_amount, hourly_rate_currency, years_experience, portfolio_links, "
            "approved_at, rating_avg, rating_count, rating_sum) VALUES (%s, 'Rule table', "
            "'Auditor', 'Audits.', '{solidity}', '{ethereum}', 100, 'USD', 3, '{}', now(), "
            "0, 0, 0)",
            (account_id,),
        )
    return account_id


def build_world(database_url: str, cases: list[Case]) -> World:
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        owner = _account(conn, Role.client, profile=False)
        callers = {
            (role, profile): _account(conn, role, profile=profile)
            for role in Role
            for profile in (False, True)
        }
        world = World(owner, callers, {case: uuid.uuid4() for case in cases})
        projects, invitations, proposals = [], [], []
        for case, project_id in world.projects.items():
            caller = world.caller(case)
            projects.append(
                (
                    project_id,
                    caller if case.relation == "owner" else owner,
                    caller if case.relation == "assigned" else None,
                    case.visibility.value,
                    case.status.value,
                )
            )
            if case.relation == "invited":
                invitations.append((project_id, caller))
            if case.has_active:
                proposals.append((uuid.uuid4(), project_id, caller))
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO projects (id, client_id, expert_id, visibility, status, title, "
                "description, chains, skills, budget_min, budget_max, budget_currency, "
                "deadline) VALUES (%s, %s, %s, %s, %s, 'Rule table', 'A project.', "
                "'{ethereum}', '{solidity}', 100, 200, 'USD', current_date + 30)",
                projects,
            )
            cursor.executemany(
                "INSERT INTO project_invitations (project_id, expert_id) VALUES (%s, %s)",
                invitations,
            )
            cursor.executemany(
                "INSERT INTO proposals (id, project_id, expert_id, cover_letter, price_amount, "
                "price_currency, estimated_days, status) "
                "VALUES (%s, %s, %s, 'the earlier one', 100, 'USD', 3, 'pending')",
                proposals,
            )
    return world


def principal(world: World, case: Case) -> Principal:
    return Principal(
        account_id=world.caller(case),
        session_id=uuid.uuid4(),
        email="rules@example.com",
        display_name="Rule table",
        role=case.role,
        plan=Plan.free,
        created_at=dt.datetime.now(dt.UTC),
        # Verification is checked before the rule (accounts/verification.py), and tested there.
        email_verified=True,
        # An admin's powers need the second factor (Principal.is_admin), tested there too.
        mfa_enabled=True,
    )


def body(case: Case) -> ProposalRequest:
    price = Money(amount=Decimal("150.00"), currency=case.currency)
    return ProposalRequest(cover_letter=COVER_LETTER, price=price, estimated_days=5)


def by_the_rule(world: World, case: Case) -> Outcome:
    """The rule in Python, on the facts the case set up."""
    caller = world.caller(case)
    project = ProposedOn(
        id=world.projects[case],
        client_id=caller if case.relation == "owner" else world.owner,
        expert_id=caller if case.relation == "assigned" else None,
        visibility=case.visibility.value,
        status=case.status.value,
        budget_currency=PROJECT_CURRENCY,
        title="Rule table",
        has_profile=case.has_profile,
        has_active=case.has_active,
        invited=case.relation == "invited",
    )
    is_expert = case.role is Role.expert
    facts = Proposing(project, caller, is_expert, case.role is Role.admin, case.currency.value)
    return outcome_of(proposal_refusal(facts))


async def by_the_service(session: AsyncSession, world: World, case: Case) -> Outcome:
    """The write path: ``ProposalService.submit``, its one statement deciding in SQL."""
    try:
        await ProposalService(session).submit(
            project_id=world.projects[case], principal=principal(world, case), body=body(case)
        )
    except ChainconsultError as exc:
        return outcome_of(exc)
    return None


async def check_every_path(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, cases: list[Case]
) -> dict[Case, Outcome]:
    """Each case through both paths: the same outcome, and a row exactly where allowed."""
    world = build_world(database_url, cases)
    outcomes: dict[Case, Outcome] = {}
    differing = []
    async with sessionmaker() as session:
        for case in cases:
            expected = by_the_rule(world, case)
            written = await by_the_service(session, world, case)
            if written != expected:
                differing.append((case, expected, written))
            outcomes[case] = expected
    assert differing == []
    stored = query(
        database_url,
        "SELECT project_id FROM proposals WHERE cover_letter = %s AND project_id = ANY(%s)",
        COVER_LETTER,
        list(world.projects.values()),
    )
    allowed = {world.projects[case] for case, outcome in outcomes.items() if outcome is None}
    assert {project_id for (project_id,) in stored} == allowed
    return outcomes


@pytest.fixture
async def sessionmaker(
    database_url: str, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = build_engine(make_settings(database_url, tmp_path, REDIS_URL=None).database)
    yield build_sessionmaker(engine)
    await engine.dispose()


async def test_every_case_of_the_proposal_rule_has_one_outcome_on_every_path(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    cases = list(every_case())
    outcomes = await check_every_path(sessionmaker, database_url, cases)

    # The table reaches every refusal and the write: no branch of the rule goes untested.
    heard = {outcome[2] if outcome else "written" for outcome in outcomes.values()}
    assert heard == {
        "written",
        "No such project.",
        "Only approved experts can propose; apply to become one first.",
        "You cannot propose on your own project.",
        "The project is in_progress; proposals are closed.",
        "The project is completed; proposals are closed.",
        "The project is cancelled; proposals are closed.",
        "Price the proposal in the project's budget currency.",
        "You already have an active proposal on this project.",
    }
    # Spot checks of the rule itself, read straight off the table.
    stranger = Case(
        ProjectStatus.open,
        Visibility.invite_only,
        "stranger",
        Role.expert,
        has_profile=True,
        has_active=False,
        currency=Currency.USD,
    )
    assert outcomes[stranger] is not None
    assert outcomes[stranger][1] == 404
    invited = Case(**{**_fields(stranger), "relation": "invited"})
    assert outcomes[invited] is None
    candidate = Case(**{**_fields(invited), "role": Role.expert_candidate})
    assert outcomes[candidate] is not None
    assert outcomes[candidate][1] == 403


def _fields(case: Case) -> dict[str, Any]:
    return {name: getattr(case, name) for name in Case.__slots__}


async def test_a_missing_project_is_404_on_every_path(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    world = build_world(database_url, [])
    case = next(every_case())
    world.projects[case] = uuid.uuid4()
    async with sessionmaker() as session:
        written = await by_the_service(session, world, case)
    assert written == ("NotFound", 404, "No such project.", {})


def _without_the_status_check(
    original: Callable[[Proposing, Any], list[tuple[Any, service.Refusal]]],
) -> Callable[[Proposing, Any], list[tuple[Any, service.Refusal]]]:
    closed = ProposedOn(
        uuid.uuid4(), uuid.uuid4(), None, "public", "completed", "USD", "", True, False, False
    )

    def checks(facts: Proposing, logic: Any) -> list[tuple[Any, service.Refusal]]:
        return [
            (holds, refusal)
            for holds, refusal in original(facts, logic)
            if "proposals are closed" not in refusal(closed).detail
        ]

    return checks


async def test_a_rule_changed_in_its_home_changes_every_path(
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Approved experts only: everyone else is refused before the status matters.
    cases = [c for c in every_case() if c.role is Role.expert and c.has_profile]
    before = await check_every_path(sessionmaker, database_url, cases)

    monkeypatch.setattr(
        service, "proposal_checks", _without_the_status_check(service.proposal_checks)
    )
    monkeypatch.setattr(service, "SUBMIT", service.build_submit())
    after = await check_every_path(sessionmaker, database_url, cases)

    # Closed projects now take proposals on both paths (or refuse for the next reason);
    # open ones are as before.
    changed = {case for case in cases if before[case] != after[case]}
    assert all(case.status is not ProjectStatus.open for case in changed)
    assert not [o for o in after.values() if o is not None and "closed" in o[2]]
    assert any(after[case] is None for case in changed)
