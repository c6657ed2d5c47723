"""ORM tables of every domain, in one place so migrations and tests see them all."""

from chainconsult.models.accounts import Account, AccountSession, Plan, Role
from chainconsult.models.base import Base
from chainconsult.models.login_throttle import LoginFailureCounter

__all__ = ["Account", "AccountSession", "Base", "LoginFailureCounter", "Plan", "Role"]
