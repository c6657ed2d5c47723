"""How an email leaves the platform, chosen by EMAIL_SERVICE: ``smtp`` sends through
aiosmtplib, ``console`` writes it to the log, ``disabled`` drops it with a log line.

The caller decides what to do with failures: ``EmailRejected`` means the message can never
go (a 5xx about the recipient or the content, an address no header can carry); anything else
is transient.

Headers are built in one place, ``OutgoingEmail.to_mime``, from whatever is stored: the
subject and the recipient's name become one line there (a name with a line break must not
fail the job on every retry, nor add a header), and an internationalised domain goes as
punycode."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib
import structlog
from email_validator import EmailNotValidError, validate_email

from chainconsult.infra.settings.email_transport import EmailService, EmailSettings, SmtpTls
from chainconsult.infra.text import one_line
from chainconsult.infra.tracing import client_span

log = structlog.get_logger("chainconsult.email")


class EmailRejected(Exception):
    """The server refused this message permanently; sending it again cannot help."""

    def __init__(self, message: str, *, code: int | None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    to: str
    to_name: str
    subject: str
    text: str
    html: str
    message_id: str
    """``<...@...>``; derived from the idempotency key, so a message sent twice after a
    crash carries the same id and mail clients show it once."""
    unsubscribe_url: str | None = None
    """Where a POST turns this kind of email off: `List-Unsubscribe` with RFC 8058 one-click."""

    def to_mime(self, sender: str) -> EmailMessage:
        # aiosmtplib sends a non-ASCII local part by SMTPUTF8 when the server offers it.
        username, domain = header_address(self.to).rsplit("@", 1)
        message = EmailMessage()
        message["From"] = sender
        message["To"] = Address(one_line(self.to_name), username, domain)
        message["Subject"] = one_line(self.subject)
        message["Message-ID"] = self.message_id
        if self.unsubscribe_url is not None:
            message["List-Unsubscribe"] = f"<{self.unsubscribe_url}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message


def header_address(address: str) -> str:
    """``address`` as a header carries it: the domain in ASCII (punycode) whenever the local
    part allows an all-ASCII form. EmailRejected when it is no address at all."""
    try:
        valid = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise EmailRejected(f"not a deliverable address: {exc}", code=None) from exc
    return valid.ascii_email or valid.normalized


class Mailer(Protocol):
    async def send(self, email: OutgoingEmail) -> None: ...


class SmtpMailer:
    def __init__(self, settings: EmailSettings) -> None:
        assert settings.smtp_host is not None
        self.settings = settings
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        mode = settings.smtp_tls
        if mode is SmtpTls.auto:
            mode = {465: SmtpTls.tls, 587: SmtpTls.starttls}.get(settings.smtp_port, SmtpTls.auto)
        self.use_tls = mode is SmtpTls.tls
        # True: STARTTLS or fail; None: STARTTLS when the server offers it; False: never.
        self.start_tls: bool | None = {SmtpTls.starttls: True, SmtpTls.none: False}.get(mode)
        self.tls_context = ssl.create_default_context(
            cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None
        )

    async def send(self, email: OutgoingEmail) -> None:
        password = self.settings.smtp_password
        try:
            with client_span("smtp send", {"server.address": self.host, "server.port": self.port}):
                await aiosmtplib.send(
                    email.to_mime(self.settings.smtp_from),
                    hostname=self.host,
                    port=self.port,
                    username=self.settings.smtp_username,
                    password=password.get_secret_value() if password else None,
                    use_tls=self.use_tls,
                    start_tls=False if self.use_tls else self.start_tls,
                    tls_context=self.tls_context,
                    timeout=self.settings.smtp_timeout_seconds,
                )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            if codes and all(code >= 500 for code in codes):
                raise EmailRejected(f"recipient refused: {exc}", code=codes[0]) from exc
            raise
        except (aiosmtplib.SMTPDataError, aiosmtplib.SMTPRecipientRefused) as exc:
            if exc.code >= 500:
                raise EmailRejected(f"message refused: {exc}", code=exc.code) from exc
            raise
        except aiosmtplib.SMTPNotSupported as exc:
            # A non-ASCII local part needs SMTPUTF8, which this server does not offer.
            raise EmailRejected(f"server cannot carry this message: {exc}", code=None) from exc
        log.info("email_sent", to=email.to, subject=email.subject, message_id=email.message_id)


class ConsoleMailer:
    """Development: the whole message goes to the log instead of a mail server."""

    async def send(self, email: OutgoingEmail) -> None:
        log.info(
            "email",
            to=email.to,
            subject=email.subject,
            message_id=email.message_id,
            text=email.text,
        )


class DisabledMailer:
    async def send(self, email: OutgoingEmail) -> None:
        log.info(
            "email_dropped", to=email.to, subject=email.subject, reason="EMAIL_SERVICE=disabled"
        )


def build_mailer(settings: EmailSettings) -> Mailer:
    if settings.service is EmailService.smtp:
        return SmtpMailer(settings)
    if settings.service is EmailService.console:
        return ConsoleMailer()
    return DisabledMailer()
