"""ORM tables of every domain, in one place so migrations and tests see them all."""

from chainconsult.models.accounts import Account, AccountSession, Plan, Role
from chainconsult.models.base import Base
from chainconsult.models.monitoring import Alert, LogEntry

__all__ = ["Account", "AccountSession", "Alert", "Base", "LogEntry", "Plan", "Role"]
