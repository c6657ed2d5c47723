"""ORM tables of every domain and of infra, in one place so migrations and tests see them all."""

from chainconsult.infra.monitoring.models import Alert, LogEntry
from chainconsult.models.accounts import Account, AccountSession, Plan, Role
from chainconsult.models.audit import AuditEntry
from chainconsult.models.base import Base
from chainconsult.models.experts import ApplicationStatus, ExpertApplication, ExpertProfile
from chainconsult.models.jobs import DeliveryStatus, EmailDelivery, JobFailure
from chainconsult.models.login_throttle import LoginFailureCounter
from chainconsult.models.notifications import Notification
from chainconsult.models.projects import (
    Project,
    ProjectInvitation,
    ProjectStatus,
    Proposal,
    ProposalStatus,
    Review,
    Visibility,
)

__all__ = [
    "Account",
    "AccountSession",
    "Alert",
    "ApplicationStatus",
    "AuditEntry",
    "Base",
    "DeliveryStatus",
    "EmailDelivery",
    "ExpertApplication",
    "ExpertProfile",
    "JobFailure",
    "LogEntry",
    "LoginFailureCounter",
    "Notification",
    "Plan",
    "Project",
    "ProjectInvitation",
    "ProjectStatus",
    "Proposal",
    "ProposalStatus",
    "Review",
    "Role",
    "Visibility",
]
