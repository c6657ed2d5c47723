"""Steps of the mailed-link tests: an app that mails through a real SMTP server (aiosmtpd),
and the link a message carries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.config import Settings
from chainconsult.schedules import worker_resources
from tests.infra.jobs.conftest import drain
from tests.mail.test_email_delivery import PUBLIC_URL, smtp_settings
from tests.smtp import Received, SmtpSink

__all__ = ["PUBLIC_URL", "deliver", "link_in", "mail_settings_for", "messages", "token_in"]


def mail_settings_for(database_url: str, tmp_path: Path, sink: SmtpSink, **env: Any) -> Settings:
    return smtp_settings(database_url, tmp_path, sink.port, **env)


async def deliver(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Run the queued email jobs to completion (a worker in this process)."""
    await drain(worker_resources(settings, sessionmaker))


def messages(sink: SmtpSink, address: str, subject: str) -> list[Received]:
    return [m for m in sink.messages_to(address) if m.message["Subject"] == subject]


def link_in(mail: Received, path: str) -> str:
    """The one link to ``path`` in a message; the same in its text and HTML parts."""
    pattern = re.escape(f"{PUBLIC_URL}{path}") + r"\?token=[A-Za-z0-9_-]+"
    [in_text] = re.findall(pattern, mail.part("plain"))
    assert re.findall(pattern, mail.part("html")) == [in_text]
    return in_text


def token_in(mail: Received, path: str) -> str:
    return link_in(mail, path).rsplit("token=", 1)[1]
