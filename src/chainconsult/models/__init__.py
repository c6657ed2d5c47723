"""ORM tables of every domain, in one place so migrations and tests see them all."""

from chainconsult.models.accounts import Account, AccountSession, Plan, Role
from chainconsult.models.base import Base
from chainconsult.models.jobs import DeliveryStatus, EmailDelivery, JobFailure

__all__ = ["Account", "AccountSession", "Base", "Plan", "Role"]
__all__ += ["DeliveryStatus", "EmailDelivery", "JobFailure"]
