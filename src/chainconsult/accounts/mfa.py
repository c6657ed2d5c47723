"""TOTP two-factor login (RFC 6238, via pyotp): set-up, recovery codes, the second step of a
login, turning it off, and the admin rule (ADMIN_REQUIRE_2FA).

The secret is kept encrypted (AES-GCM, key derived from SECRET_KEY, bound to the account id)
and shown once, at set-up. Recovery codes are kept as keyed hashes. A code is good once: the
newest accepted 30-second step is stored, and an older or equal one is refused. A login's
second step is an opaque ``mfa_token`` (stored as its SHA-256) that allows five code checks,
each counted before the code is checked so that parallel guesses get no more."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.service import Principal, forget_cached_account
from chainconsult.accounts.throttle import LoginThrottle
from chainconsult.errors import Conflict, Forbidden, Unauthorized
from chainconsult.infra.db.transaction import one_statement
from chainconsult.infra.security.tokens import new_login_token, same_secret, token_digest
from chainconsult.models.accounts import Account, Role
from chainconsult.models.base import utcnow
from chainconsult.models.identity import MfaChallenge, RecoveryCode, TotpFactor

if TYPE_CHECKING:
    import pyotp

# pyotp and cryptography's AEAD are imported on first use: every API worker imports this
# module (the admin rule), and they add about 7 MB to a worker that never sees a code
# (docs/decisions/0017-lazy-worker-imports.md).

ISSUER = "chainconsult"
STEP_SECONDS = 30
RECOVERY_CODES = 10
MFA_TOKEN_TTL_SECONDS = 300
MAX_CODE_ATTEMPTS = 5
# 31 symbols without look-alikes (0/o, 1/l/i): ten of them carry about 49 bits.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
# ASCII digits only: \d would also take other scripts' digits.
_SIX_DIGITS = re.compile(r"[0-9]{6}")


class InvalidCode(Unauthorized):
    slug = "invalid-code"
    title = "Invalid code"


class RefusedCode(Forbidden):
    """A wrong code from a logged-in caller (set-up, turning off): 403, since their login
    itself is fine."""

    slug = "invalid-code"
    title = "Invalid code"


class MfaRequired(Forbidden):
    slug = "mfa-required"
    title = "Two-factor login required"


def ensure_admin(principal: Principal) -> None:
    """Admin routes and pages (accounts/auth.py, accounts/visit.py, operations/) refuse
    whoever lacks admin powers (``Principal.is_admin``, the one rule), and tell an admin who
    lacks only the second factor why."""
    if principal.role is not Role.admin:
        raise Forbidden("This needs an admin account.")
    if not principal.is_admin:
        raise MfaRequired(
            "Admin routes need two-factor login: set it up with POST /api/v2/auth/2fa/setup "
            "(or on /account/security), then log in again."
        )


async def mfa_enabled(session: AsyncSession, account_id: uuid.UUID) -> bool:
    """Whether logins of the account need a second factor (``mfa_enabled`` of answers)."""
    factor = await session.get(TotpFactor, account_id)
    return factor is not None and factor.enabled_at is not None


class SecretBox:
    """Encrypts TOTP secrets at rest; a changed SECRET_KEY makes them unreadable (users then
    log in with a recovery code... which is keyed too: rotate SECRET_KEY with 2FA reset)."""

    def __init__(self, secret_key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key = hmac.new(secret_key, b"chainconsult.totp-secret.v1", hashlib.sha256).digest()
        self._aead = AESGCM(key)
        self._hash_key = hmac.new(secret_key, b"chainconsult.recovery.v1", hashlib.sha256).digest()

    def seal(self, secret: str, account_id: uuid.UUID) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, secret.encode(), account_id.bytes)

    def open(self, sealed: bytes, account_id: uuid.UUID) -> str:
        return self._aead.decrypt(sealed[:12], sealed[12:], account_id.bytes).decode()

    def recovery_hash(self, code: str) -> bytes:
        normalized = re.sub(r"[\s-]", "", code).lower()
        return hmac.new(self._hash_key, normalized.encode(), hashlib.sha256).digest()


def now() -> float:
    """The clock codes are checked against (a function, so tests can move it)."""
    return time.time()


def _totp(secret: str) -> pyotp.TOTP:
    import pyotp

    return pyotp.TOTP(secret, interval=STEP_SECONDS)


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step whose code ``code`` is (this one or a neighbour: clocks drift)."""
    if not _SIX_DIGITS.fullmatch(code):
        return None
    totp = _totp(secret)
    step = int(now // STEP_SECONDS)
    for candidate in (step, step - 1, step + 1):
        if same_secret(code, totp.at(candidate * STEP_SECONDS)):
            return candidate
    return None


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


@dataclass(frozen=True, slots=True)
class TotpSetup:
    secret: str
    otpauth_uri: str


@dataclass(frozen=True, slots=True)
class Challenge:
    token: str
    expires_in: int


class MfaService:
    def __init__(self, session: AsyncSession, secret_key: bytes) -> None:
        self.session = session
        self.box = SecretBox(secret_key)

    async def _factor(self, account_id: uuid.UUID) -> TotpFactor | None:
        return await self.session.get(TotpFactor, account_id)

    async def is_enabled(self, account_id: uuid.UUID) -> bool:
        return await mfa_enabled(self.session, account_id)

    async def begin_setup(self, *, account_id: uuid.UUID, email: str) -> TotpSetup:
        """A new secret, pending until ``confirm``; a pending one before it is replaced."""
        factor = await self._factor(account_id)
        if factor is not None and factor.enabled_at is not None:
            raise Conflict("Two-factor login is already on; turn it off first.")
        import pyotp

        secret = pyotp.random_base32()
        sealed = self.box.seal(secret, account_id)
        if factor is None:
            self.session.add(TotpFactor(account_id=account_id, secret_encrypted=sealed))
        else:
            factor.secret_encrypted = sealed
            factor.last_used_step = None
        await self.session.flush()
        uri = _totp(secret).provisioning_uri(name=email, issuer_name=ISSUER)
        return TotpSetup(secret=secret, otpauth_uri=uri)

    async def confirm(self, *, account_id: uuid.UUID, code: str) -> list[str]:
        """Turn two-factor login on with a first right code; the new recovery codes (the
        only time they are shown)."""
        factor = await self._factor(account_id)
        if factor is None:
            raise Conflict("Start two-factor set-up first (POST /api/v2/auth/2fa/setup).")
        if factor.enabled_at is not None:
            raise Conflict("Two-factor login is already on.")
        step = matching_step(self.box.open(factor.secret_encrypted, account_id), code, now())
        if step is None:
            raise RefusedCode("The code does not match; check the authenticator's clock.")
        factor.enabled_at = utcnow()
        factor.last_used_step = step  # the confirming code cannot log in as well
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        await self.session.execute(
            delete(RecoveryCode).where(RecoveryCode.account_id == account_id)
        )
        self.session.add_all(
            RecoveryCode(account_id=account_id, code_hash=self.box.recovery_hash(code))
            for code in codes
        )
        await self.session.flush()
        forget_cached_account(self.session, account_id)
        return codes

    async def disable(self, *, account_id: uuid.UUID, code: str) -> None:
        """Turn it off, given a current code or an unused recovery code (the caller has
        checked the password)."""
        if not await self.is_enabled(account_id):
            raise Conflict("Two-factor login is not on.")
        if not await self.use_code(account_id, code) and not await self.use_recovery_code(
            account_id, code
        ):
            raise RefusedCode("The code does not match.")
        await self.erase(account_id)

    async def erase(self, account_id: uuid.UUID) -> None:
        """Remove every trace of the second factor (turning it off, account erasure)."""
        for table in (TotpFactor, RecoveryCode, MfaChallenge):
            await self.session.execute(delete(table).where(table.account_id == account_id))
        forget_cached_account(self.session, account_id)

    async def use_code(self, account_id: uuid.UUID, code: str) -> bool:
        """Spend a TOTP code: right, and of a newer step than any accepted before."""
        factor = await self._factor(account_id)
        if factor is None or factor.enabled_at is None:
            return False
        step = matching_step(self.box.open(factor.secret_encrypted, account_id), code, now())
        if step is None:
            return False
        # Conditional, so two requests with one code cannot both pass (the second waits for
        # the first's row lock, then finds the step taken).
        spent = await self.session.execute(
            update(TotpFactor)
            .where(
                TotpFactor.account_id == account_id,
                (TotpFactor.last_used_step.is_(None)) | (TotpFactor.last_used_step < step),
            )
            .values(last_used_step=step)
            .returning(TotpFactor.account_id)
            .execution_options(synchronize_session=False)
        )
        await self.session.refresh(factor)
        return spent.first() is not None

    async def use_recovery_code(self, account_id: uuid.UUID, code: str) -> bool:
        spent = await self.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.account_id == account_id,
                RecoveryCode.code_hash == self.box.recovery_hash(code),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=utcnow())
            .returning(RecoveryCode.id)
        )
        return spent.first() is not None

    async def recovery_codes_left(self, account_id: uuid.UUID) -> int:
        rows = await self.session.execute(
            select(RecoveryCode.id).where(
                RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None)
            )
        )
        return len(rows.all())

    async def challenge(self, account_id: uuid.UUID) -> Challenge:
        """The pending second step of a login whose first factor was right."""
        token = new_login_token()
        started = utcnow()
        # Ended steps are of no use to anyone: the table holds only live ones.
        await self.session.execute(delete(MfaChallenge).where(MfaChallenge.expires_at < started))
        self.session.add(
            MfaChallenge(
                account_id=account_id,
                token_hash=token_digest(token),
                expires_at=started + dt.timedelta(seconds=MFA_TOKEN_TTL_SECONDS),
            )
        )
        await self.session.flush()
        return Challenge(token=token, expires_in=MFA_TOKEN_TTL_SECONDS)

    async def complete(
        self,
        *,
        mfa_token: str,
        code: str | None,
        recovery_code: str | None,
        throttle: LoginThrottle,
        ip: str | None,
    ) -> uuid.UUID:
        """The account whose pending login ``mfa_token`` is, given a right code or recovery
        code; the token is then spent. Each code goes through the login throttle like a
        password (counted first, the counts cleared by a right one), so new mfa_tokens buy no
        more guesses. Raises InvalidCode, or TooManyRequests while the account must wait."""
        table = MfaChallenge.__table__.c
        # Counted, and committed, before the code is checked: a wrong code's request rolls
        # back, and parallel guesses must not share one count.
        attempt = await one_statement(
            self.session,
            update(MfaChallenge)
            .where(
                table.token_hash == token_digest(mfa_token),
                table.used_at.is_(None),
                table.expires_at > utcnow(),
                table.failures < MAX_CODE_ATTEMPTS,
            )
            .values(failures=table.failures + 1)
            .returning(table.id, table.account_id),
            {},
        )
        if attempt is None:
            raise InvalidCode(
                "This sign-in step has ended (expired, used, or too many wrong codes); "
                "log in again.",
                reason="mfa-token",
            )
        challenge_id, account_id = tuple(attempt)
        email = await self.session.scalar(select(Account.email).where(Account.id == account_id))
        if email is None:
            raise InvalidCode("This account can no longer log in.", reason="mfa-token")
        await throttle.reserve(self.session, email=email, ip=ip)
        if code is not None:
            right = await self.use_code(account_id, code)
        else:
            right = await self.use_recovery_code(account_id, recovery_code or "")
        if not right:
            raise InvalidCode("The code is wrong or was used already.", reason="code")
        await throttle.succeeded(self.session, email=email, ip=ip)
        await self.session.execute(
            update(MfaChallenge).where(MfaChallenge.id == challenge_id).values(used_at=utcnow())
        )
        return uuid.UUID(str(account_id))
