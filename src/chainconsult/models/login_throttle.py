"""Failed-login counters for the brute-force defence, one row per account key or client IP."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from chainconsult.models.base import Base


class LoginFailureCounter(Base):
    """Failures within the current window for one key: ``email:<sha256 of the normalised
    address>`` (so an address that has no account is counted exactly like one that has) or
    ``ip:<sha256 of the client address>``. An attempt is counted before its password is checked
    (accounts/throttle.py), and ``last_failure_at`` is when the latest attempt began or, once
    checked, failed. Kept in PostgreSQL, not Redis, so the ASVS cap holds across every process
    even while Redis is down."""

    __tablename__ = "login_failure_counters"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int]
    window_started_at: Mapped[dt.datetime] = mapped_column(index=True)
    last_failure_at: Mapped[dt.datetime]
