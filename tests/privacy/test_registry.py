"""Every table that references an account is in the personal-data registry, so export and
erasure cannot silently miss a table that someone adds later."""

from __future__ import annotations

from chainconsult.privacy.service import personal_data
from tests.privacy.test_export_and_erasure import fk_columns_to_accounts


def test_every_table_referencing_accounts_is_registered(database_url: str) -> None:
    registered = {entry.table: set(entry.owners) for entry in personal_data.tables()}
    missing = [
        f"{table}.{column}"
        for table, column in fk_columns_to_accounts(database_url)
        if column not in registered.get(table, set())
    ]
    assert missing == [], (
        "register these in chainconsult.privacy (see privacy/registry.py): " + ", ".join(missing)
    )
