"""ORM tables of every domain and of infra, in one place so migrations and tests see them all."""

from chainconsult.infra.chain.models import ChainBlock, ChainCursor, ChainEvent
from chainconsult.infra.live.models import LiveEvent
from chainconsult.infra.monitoring.models import Alert, LogEntry
from chainconsult.models.account_tokens import AccountToken, TokenPurpose
from chainconsult.models.accounts import Account, AccountSession, Plan, Role
from chainconsult.models.audit import AuditEntry
from chainconsult.models.base import Base
from chainconsult.models.conversations import (
    Conversation,
    ConversationFile,
    ConversationReader,
    Message,
)
from chainconsult.models.escrow import Milestone, MilestoneDisputeReason, MilestoneStatus
from chainconsult.models.experts import ApplicationStatus, ExpertApplication, ExpertProfile
from chainconsult.models.identity import (
    MfaChallenge,
    RecoveryCode,
    SiweNonce,
    TotpFactor,
    Wallet,
)
from chainconsult.models.jobs import DeliveryStatus, EmailDelivery, JobFailure
from chainconsult.models.login_throttle import LoginFailureCounter
from chainconsult.models.notifications import EmailOptOut, Notification
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
    "AccountToken",
    "Alert",
    "ApplicationStatus",
    "AuditEntry",
    "Base",
    "ChainBlock",
    "ChainCursor",
    "ChainEvent",
    "Conversation",
    "ConversationFile",
    "ConversationReader",
    "DeliveryStatus",
    "EmailDelivery",
    "EmailOptOut",
    "ExpertApplication",
    "ExpertProfile",
    "JobFailure",
    "LiveEvent",
    "LogEntry",
    "LoginFailureCounter",
    "Message",
    "MfaChallenge",
    "Milestone",
    "MilestoneDisputeReason",
    "MilestoneStatus",
    "Notification",
    "Plan",
    "Project",
    "ProjectInvitation",
    "ProjectStatus",
    "Proposal",
    "ProposalStatus",
    "RecoveryCode",
    "Review",
    "Role",
    "SiweNonce",
    "TokenPurpose",
    "TotpFactor",
    "Visibility",
    "Wallet",
]
