"""The marketplace's personal data: one registry entry per table, in erasure order (after
the job queue's tables, which are found through the notifications)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.recovery import reset_key
from chainconsult.accounts.throttle import account_key
from chainconsult.accounts.verification import verification_key
from chainconsult.models.accounts import Account, Plan, Role
from chainconsult.models.audit import AuditEntry
from chainconsult.models.base import utcnow
from chainconsult.models.login_throttle import LoginFailureCounter
from chainconsult.models.projects import Project, ProjectStatus, Proposal, ProposalStatus
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.notifications.service import NotificationService
from chainconsult.privacy.conversation_tables import CONVERSATION_TABLES
from chainconsult.privacy.identity_tables import IDENTITY_TABLES
from chainconsult.privacy.job_tables import JOB_TABLES
from chainconsult.privacy.quotes import unquote_client
from chainconsult.privacy.registry import PersonalTable, delete_rows, personal_data, set_null
from chainconsult.projects.service import CANCELLABLE

ERASED_NAME = "Deleted user"
ERASED_PROJECT_TITLE = "Deleted project"


async def _erase_projects(session: AsyncSession, account_id: uuid.UUID) -> None:
    """A project nobody was hired for goes (its pending proposers are told it was cancelled);
    one with a hired expert stays, since the expert keeps the record of the work. Copies of
    the client's words in other people's rows go too (chainconsult.privacy.quotes)."""
    # Locked: an acceptance racing the erasure hires before it, or not at all.
    owned = (
        await session.execute(
            select(Project.id, Project.title, Project.expert_id)
            .where(Project.client_id == account_id)
            .with_for_update()
        )
    ).all()
    unhired = [(project_id, title) for project_id, title, expert_id in owned if expert_id is None]
    notifications = NotificationService(session)
    for project_id, _ in unhired:
        pending = await session.execute(
            select(Proposal.id, Proposal.expert_id).where(
                Proposal.project_id == project_id, Proposal.status == ProposalStatus.pending
            )
        )
        for proposal_id, expert_id in pending.all():
            await notifications.notify(
                recipients=[expert_id],
                kind=NotificationKind.proposal_declined,
                payload={
                    "project_id": project_id,
                    "project_title": ERASED_PROJECT_TITLE,
                    "proposal_id": proposal_id,
                    "reason": "project_cancelled",
                },
            )
    await unquote_client(
        session,
        account_id,
        projects=[row[0] for row in owned],
        deleted=dict(unhired),
        placeholder=ERASED_PROJECT_TITLE,
    )
    if unhired:
        await session.execute(delete(Project).where(Project.id.in_([row[0] for row in unhired])))
    # Kept projects that were still open or running end here: their client is gone.
    await session.execute(
        update(Project)
        .where(
            Project.client_id == account_id,
            Project.status.in_(CANCELLABLE),
        )
        .values(status=ProjectStatus.cancelled, cancelled_at=utcnow())
    )


async def _erase_proposals(session: AsyncSession, account_id: uuid.UUID) -> None:
    """An accepted proposal is the client's record of the deal: its terms stay, the cover
    letter (the expert's own words about themselves) goes. Every other proposal goes."""
    await session.execute(
        delete(Proposal).where(
            Proposal.expert_id == account_id, Proposal.status != ProposalStatus.accepted
        )
    )
    await session.execute(
        update(Proposal).where(Proposal.expert_id == account_id).values(cover_letter="")
    )


async def _erase_audit(session: AsyncSession, account_id: uuid.UUID) -> None:
    """Entries stay (the trail must not have holes) but lose where they came from."""
    await session.execute(
        update(AuditEntry)
        .where(
            or_(
                AuditEntry.actor_id == account_id,
                (AuditEntry.resource_type == "account")
                & (AuditEntry.resource_id == str(account_id)),
            )
        )
        .values(ip=None, user_agent=None)
    )


async def _erase_account(session: AsyncSession, account_id: uuid.UUID) -> None:
    """The row stays as an anonymous placeholder that kept reviews and projects point at;
    nothing in it identifies the person, and it can never log in again."""
    await session.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(
            email=f"erased-{account_id.hex}@erased.invalid",
            display_name=ERASED_NAME,
            password_hash="!erased",  # noqa: S106 - no argon2 hash: every login fails
            is_active=False,
            last_login_at=None,
            email_verified_at=None,
            role=Role.client,
            plan=Plan.free,
            updated_at=utcnow(),
        )
    )


async def _erase_applications(session: AsyncSession, account_id: uuid.UUID) -> None:
    """The applicant's revisions go; an erased admin's decisions stay, unlinked from them."""
    await delete_rows("expert_applications", "account_id")(session, account_id)
    await set_null("expert_applications", "decided_by_id")(session, account_id)


async def _login_counter_keys(session: AsyncSession, account_id: uuid.UUID) -> dict[str, object]:
    # Computed by the throttles' own functions: SQL's lower() differs from Python's for some
    # letters, and under a C locale for every non-ASCII one.
    email = await session.scalar(select(Account.email).where(Account.id == account_id))
    if email is None:
        return {"login_key": None, "reset_key": None, "verify_key": None}
    return {
        "login_key": account_key(email),
        "reset_key": reset_key(email),
        "verify_key": verification_key(email),
    }


async def _erase_login_counters(session: AsyncSession, account_id: uuid.UUID) -> None:
    keys = list((await _login_counter_keys(session, account_id)).values())
    await session.execute(delete(LoginFailureCounter).where(LoginFailureCounter.key.in_(keys)))


MARKETPLACE_TABLES = [
    *CONVERSATION_TABLES,
    PersonalTable("notifications", ("recipient_id",), delete_rows("notifications", "recipient_id")),
    PersonalTable("email_opt_outs", ("account_id",), delete_rows("email_opt_outs", "account_id")),
    # Deleting the logins revokes every token and cookie at once.
    PersonalTable(
        "account_sessions",
        ("account_id",),
        delete_rows("account_sessions", "account_id"),
        hidden=frozenset({"token_hash"}),
    ),
    # Unused reset and verification links stop working with their rows.
    PersonalTable(
        "account_tokens",
        ("account_id",),
        delete_rows("account_tokens", "account_id"),
        hidden=frozenset({"token_hash"}),
    ),
    PersonalTable(
        "project_invitations", ("expert_id",), delete_rows("project_invitations", "expert_id")
    ),
    # A dispute reason is its party's own words (the chain keeps only their hash); the
    # arbiter of a dispute still open then sees that no reason is on record.
    PersonalTable(
        "milestone_dispute_reasons",
        ("account_id",),
        delete_rows("milestone_dispute_reasons", "account_id"),
    ),
    PersonalTable("projects", ("client_id", "expert_id"), _erase_projects),
    PersonalTable("proposals", ("expert_id",), _erase_proposals),
    # A review stays with the expert it rates (their average depends on it), anonymously.
    PersonalTable("reviews", ("reviewer_id", "expert_id"), set_null("reviews", "reviewer_id")),
    PersonalTable("expert_applications", ("account_id", "decided_by_id"), _erase_applications),
    PersonalTable("expert_profiles", ("id",), delete_rows("expert_profiles", "id")),
    # Failed-login counters are keyed by a hash of the address, not by the account id.
    PersonalTable(
        "login_failure_counters",
        (),
        _erase_login_counters,
        also_about="t.key IN (:login_key, :reset_key, :verify_key)",
        parameters=_login_counter_keys,
    ),
    PersonalTable(
        "audit_log",
        ("actor_id",),
        _erase_audit,
        also_about="t.resource_type = 'account' AND t.resource_id = CAST(:id AS text)",
        # An admin's entry about the account: what was done, not who did it from where.
        others_hidden=frozenset({"actor_id", "ip", "user_agent"}),
    ),
    # An alert an erased admin acknowledged stays acknowledged, by nobody in particular.
    PersonalTable("alerts", ("acknowledged_by",), set_null("alerts", "acknowledged_by")),
    # Last: the placeholder row the kept rows above still reference.
    PersonalTable("accounts", ("id",), _erase_account, hidden=frozenset({"password_hash"})),
]

for _entry in [*JOB_TABLES, *IDENTITY_TABLES, *MARKETPLACE_TABLES]:
    personal_data.register(_entry)
