"""Second factors and wallets in export and erasure: erasure deletes them all (the TOTP
secret, recovery codes, pending login steps, linked wallets); the export leaves out every
secret (the encrypted TOTP secret, code and token hashes)."""

from __future__ import annotations

from chainconsult.privacy.registry import PersonalTable, delete_rows

IDENTITY_TABLES = [
    PersonalTable(
        "account_totp",
        ("account_id",),
        delete_rows("account_totp", "account_id"),
        hidden=frozenset({"secret_encrypted"}),
    ),
    PersonalTable(
        "account_recovery_codes",
        ("account_id",),
        delete_rows("account_recovery_codes", "account_id"),
        hidden=frozenset({"code_hash"}),
    ),
    PersonalTable(
        "mfa_challenges",
        ("account_id",),
        delete_rows("mfa_challenges", "account_id"),
        hidden=frozenset({"token_hash"}),
    ),
    PersonalTable("account_wallets", ("account_id",), delete_rows("account_wallets", "account_id")),
]
