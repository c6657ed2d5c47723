"""Account rules: who may register, log in, log out, and change plans. Services flush; their
caller's transaction commits (a request's, a job's or a command's)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.jobs import send_welcome_email
from chainconsult.accounts.repository import (
    AccountRepository,
    account_tag,
    login_tag,
)
from chainconsult.accounts.throttle import LoginBusy, LoginGate, LoginThrottle, login_busy
from chainconsult.errors import Conflict, NotFound, Unauthorized
from chainconsult.infra.cache import invalidate_after_commit
from chainconsult.infra.db.transaction import unit_of_work
from chainconsult.infra.jobs import defer
from chainconsult.infra.live import logins_ended_after_commit
from chainconsult.infra.security.passwords import HashingBusy, passwords
from chainconsult.infra.security.tokens import new_login_token, token_digest
from chainconsult.models.accounts import Account, AccountSession, Plan, Role
from chainconsult.models.base import utcnow


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved once per request from the bearer token or session cookie."""

    account_id: uuid.UUID
    session_id: uuid.UUID
    email: str
    display_name: str
    role: Role
    plan: Plan
    created_at: dt.datetime
    """When the account (not this login) was created."""
    mfa_enabled: bool = False
    """Whether a second factor (TOTP) guards its logins."""
    email_verified: bool = False
    verification_required: bool = True
    """REQUIRE_VERIFIED_EMAIL of the process that resolved the caller
    (accounts/verification.py: ``require_verified_email``)."""
    admin_requires_2fa: bool = True
    """ADMIN_REQUIRE_2FA of the process that resolved the caller (``is_admin``)."""
    session_expires_at: dt.datetime | None = None
    """When this login expires (an event stream ends then); None where unknown."""

    @property
    def is_admin(self) -> bool:
        """Admin powers, wherever they apply (admin routes, reading any thread, seeing
        invite-only projects): the admin role, with a second factor where ADMIN_REQUIRE_2FA
        holds. An admin without it acts as an ordinary member (mfa.py: ``ensure_admin``)."""
        return self.role is Role.admin and (self.mfa_enabled or not self.admin_requires_2fa)


@dataclass(frozen=True, slots=True)
class Login:
    token: str
    session_id: uuid.UUID
    expires_in: int
    account: Account


class AccountService:
    def __init__(self, session: AsyncSession) -> None:
        self.repository = AccountRepository(session)

    async def register(
        self, *, email: str, password: str, display_name: str, wants_expert: bool
    ) -> Account:
        if await self.repository.by_email(email) is not None:
            raise Conflict("An account with this email already exists.", field="email")
        account = Account(
            email=email,
            password_hash=await passwords.hash(password),
            display_name=display_name,
            role=Role.expert_candidate if wants_expert else Role.client,
            plan=Plan.free,
        )
        try:
            account = await self.repository.add(account)
        except IntegrityError as exc:
            # Two registrations of one address at the same moment: the unique index decides.
            raise Conflict("An account with this email already exists.", field="email") from exc
        # In this transaction: the email goes out if and only if the account is created.
        await defer(self.repository.session, send_welcome_email, account_id=str(account.id))
        return account

    async def check_password(
        self,
        *,
        email: str,
        password: str,
        throttle: LoginThrottle,
        gate: LoginGate,
        hash_wait_seconds: float,
        ip: str | None,
        settle: bool = True,
    ) -> Account:
        """The account whose password this is (a normalised address), or the same refusals
        for an unknown address. No database connection is held while the password waits for
        the hasher (a burst of logins once held the whole pool): ``throttle`` counts the
        attempt and the account is read, each committed at once, inside one of ``gate``'s
        slots; the password is checked with no transaction open. ``open_login`` then opens
        the login, unless a second factor must come first (accounts/mfa.py).

        A right password clears the throttle's counts unless ``settle`` is False: a login
        whose second factor is still to come stays counted until its code is right.

        Raises Unauthorized, TooManyRequests (throttled) or ServiceUnavailable (no database
        or hashing slot within ``hash_wait_seconds``)."""
        session = self.repository.session
        try:
            async with gate.admitted(hash_wait_seconds):
                await throttle.reserve(session, email=email, ip=ip)
                found = await unit_of_work(
                    session, lambda s: AccountRepository(s).credentials(email)
                )
        except LoginBusy:
            raise login_busy(hash_wait_seconds) from None
        stored = found.password_hash if found is not None and found.is_active else None
        try:
            # Same work and the same answer whether or not the account exists.
            matched = await passwords.verify(stored, password, wait_seconds=hash_wait_seconds)
        except HashingBusy:
            # Still counted: an attempt that passed the throttle is a failure unless proved
            # right, so a burst cannot buy more checks by getting some of it shed.
            raise login_busy(hash_wait_seconds) from None
        if not matched or found is None:
            await throttle.failed(session, email=email, ip=ip)
            raise Unauthorized("Wrong email or password.")
        rehashed = (
            await passwords.hash(password) if passwords.needs_rehash(found.password_hash) else None
        )
        account = await self.repository.by_id(found.account_id)
        if account is None or not account.is_active or account.password_hash != stored:
            # Changed while the password was checked (a new password, an erasure).
            raise Unauthorized("Wrong email or password.")
        if settle:
            await throttle.succeeded(session, email=email, ip=ip)
        if rehashed is not None:
            account.password_hash = rehashed
        return account

    async def open_login(
        self, account: Account, *, ttl_seconds: int, ip: str | None, user_agent: str | None
    ) -> Login:
        """Open a login (a session) for an account that has proved who it is."""
        now = utcnow()
        token = new_login_token()
        login = await self.repository.add_session(
            AccountSession(
                account_id=account.id,
                token_hash=token_digest(token),
                expires_at=now + dt.timedelta(seconds=ttl_seconds),
                last_seen_at=now,
                ip=ip,
                user_agent=(user_agent or "")[:512] or None,
            )
        )
        account.last_login_at = now
        return Login(token=token, session_id=login.id, expires_in=ttl_seconds, account=account)

    async def principal_for_token(
        self, token: str, *, verification_required: bool, admin_requires_2fa: bool
    ) -> Principal | None:
        """Who holds ``token``; None when it is unknown, revoked, expired or its account is
        inactive. Both halves are cached (see PRINCIPAL_CACHE_TTL_S): the login by token and
        the account by id, so a plan change drops one entry however many logins it has."""
        login = await self.repository.login_by_token_hash(token_digest(token))
        if login is None or login.expires_at <= utcnow():
            return None
        account = await self.repository.account_state(login.account_id)
        if account is None or not account.is_active:
            return None
        return Principal(
            account_id=login.account_id,
            session_id=login.session_id,
            email=account.email,
            display_name=account.display_name,
            role=Role(account.role),
            plan=Plan(account.plan),
            created_at=account.created_at,
            mfa_enabled=account.mfa_enabled,
            email_verified=account.email_verified_at is not None,
            verification_required=verification_required,
            admin_requires_2fa=admin_requires_2fa,
            session_expires_at=login.expires_at,
        )

    async def log_out(self, principal: Principal) -> None:
        revoked = await self.repository.revoke_login(principal.session_id, utcnow())
        invalidate_after_commit(self.repository.session, [login_tag(h) for h in revoked])
        logins_ended_after_commit(self.repository.session, [principal.account_id])

    async def get(self, account_id: uuid.UUID) -> Account:
        account = await self.repository.by_id(account_id)
        if account is None:
            raise NotFound("No such account.")
        return account

    async def change_plan(self, *, account_id: uuid.UUID, plan: Plan) -> Account:
        account = await self.get(account_id)
        account.plan = plan
        await self.repository.session.flush()
        forget_cached_account(self.repository.session, account_id)
        return account

    async def ensure_admin(self, *, email: str, password: str | None) -> tuple[Account, bool]:
        """Create an admin, or promote an existing account; returns (account, created)."""
        account = await self.repository.by_email(email)
        if account is None:
            if password is None:
                raise ValueError("a password is needed to create a new account")
            account = await self.repository.add(
                Account(
                    email=email,
                    password_hash=await passwords.hash(password),
                    display_name=email.split("@", 1)[0][:100] or "admin",
                    role=Role.admin,
                    plan=Plan.enterprise,
                    # The operator who runs create-admin vouches for the address.
                    email_verified_at=utcnow(),
                )
            )
            return account, True
        account.role = Role.admin
        account.email_verified_at = account.email_verified_at or utcnow()
        if password is not None:
            account.password_hash = await passwords.hash(password)
        await self.repository.session.flush()
        forget_cached_account(self.repository.session, account.id)
        return account, False


def forget_cached_account(session: AsyncSession, account_id: uuid.UUID) -> None:
    """Drop what the cache holds about an account (its principal: role, plan, active flag)
    when ``session`` commits, in every process. Call it from any write that changes those:
    plan change, role change, deactivation, erasure."""
    invalidate_after_commit(session, [account_tag(account_id)])
