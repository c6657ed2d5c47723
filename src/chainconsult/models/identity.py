"""Second factors and wallets of an account: the TOTP secret, its recovery codes, the pending
second step of a login, Sign-In with Ethereum nonces and the wallets proven by SIWE."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from chainconsult.models.base import Base, IdMixin


class TotpFactor(Base):
    """An account's TOTP secret (RFC 6238), encrypted with a key derived from SECRET_KEY.
    ``enabled_at`` is unset until a first code confirms it."""

    __tablename__ = "account_totp"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    enabled_at: Mapped[dt.datetime | None]
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)
    """The newest 30-second time step whose code was accepted: a code is good once."""


class RecoveryCode(IdMixin, Base):
    """One single-use recovery code, stored only as its keyed hash."""

    __tablename__ = "account_recovery_codes"
    __table_args__ = (
        Index("uq_account_recovery_codes_code", "account_id", "code_hash", unique=True),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    used_at: Mapped[dt.datetime | None]


class MfaChallenge(IdMixin, Base):
    """A login whose password was right and whose second factor is awaited."""

    __tablename__ = "mfa_challenges"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    failures: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    used_at: Mapped[dt.datetime | None]


class SiweNonce(Base):
    """A Sign-In with Ethereum nonce handed out and not yet used."""

    __tablename__ = "siwe_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class Wallet(IdMixin, Base):
    """An Ethereum address whose holder signed a SIWE message while logged in to the account.
    An address belongs to one account at most, so a wallet login is never ambiguous."""

    __tablename__ = "account_wallets"
    __table_args__ = (
        Index("uq_account_wallets_address", func.lower(text("address")), unique=True),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    address: Mapped[str] = mapped_column(String(42))
    """EIP-55 checksummed."""
    chain_id: Mapped[int] = mapped_column(BigInteger)
    """The chain named in the message that proved it (an EOA is the same on every chain)."""
    verified_at: Mapped[dt.datetime]
