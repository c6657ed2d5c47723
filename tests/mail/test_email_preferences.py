"""The list of optional emails the settings page shows is every email sent with an
unsubscribe link: the message digest and one per notification kind, each with templates. A
new notification kind without an entry fails here, not silently on the page."""

from __future__ import annotations

from pathlib import Path

import chainconsult.mail
from chainconsult.conversations.jobs import DIGEST_KIND
from chainconsult.mail.preferences import OPTIONAL_EMAILS
from chainconsult.notifications.schemas import NotificationKind

TEMPLATES = Path(chainconsult.mail.__file__).parent / "templates"


def test_every_email_with_an_unsubscribe_link_is_listed_once() -> None:
    kinds = [email.kind for email in OPTIONAL_EMAILS]
    assert len(kinds) == len(set(kinds))
    assert set(kinds) == {DIGEST_KIND, *(kind.value for kind in NotificationKind)}
    for kind in kinds:
        assert (TEMPLATES / f"{kind}.txt").is_file(), kind
        assert (TEMPLATES / f"{kind}.html").is_file(), kind
    assert not {"welcome", "verify_email", "password_reset", "password_changed"} & set(kinds)
