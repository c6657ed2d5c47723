"""Outgoing email transports behind one small interface: SMTP, console, disabled."""

from chainconsult.infra.email.transport import (
    ConsoleMailer,
    DisabledMailer,
    EmailRejected,
    Mailer,
    OutgoingEmail,
    SmtpMailer,
    build_mailer,
)

__all__ = [
    "ConsoleMailer",
    "DisabledMailer",
    "EmailRejected",
    "Mailer",
    "OutgoingEmail",
    "SmtpMailer",
    "build_mailer",
]
