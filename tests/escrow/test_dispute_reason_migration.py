"""Migration escrow2 moves the one stored dispute reason to the party whose dispute the chain
confirmed, with its hash (shown to the arbiter only if it matches), and back on downgrade."""

from __future__ import annotations

import json
import uuid

from alembic import command

from chainconsult.escrow.contract import details_hash
from chainconsult.infra.db.migrate import alembic_config
from tests.conftest import MigratedDatabases
from tests.market import libpq, query

EXPERT_ADDRESS = "0x" + "ee" * 20
CLIENT_ADDRESS = "0x" + "cc" * 20


def _account(url: str, role: str) -> uuid.UUID:
    account_id = uuid.uuid4()
    query(
        url,
        "INSERT INTO accounts (id, email, password_hash, display_name, role, plan, is_active) "
        "VALUES (%s, %s, '!', 'Someone', %s, 'free', true)",
        account_id,
        f"{account_id.hex}@example.com",
        role,
    )
    return account_id


def _disputed_milestone(url: str, reason: str, *, chain_reason: str, by: str) -> uuid.UUID:
    client_id, expert_id = _account(url, "client"), _account(url, "expert")
    project_id, milestone_id = uuid.uuid4(), uuid.uuid4()
    query(
        url,
        "INSERT INTO projects (id, client_id, expert_id, title, description, chains, skills, "
        "budget_min, budget_max, budget_currency, deadline, visibility, status) VALUES "
        "(%s, %s, %s, 'A project', 'Work.', '{ethereum}', '{solidity}', 100, 200, 'USD', "
        "'2030-01-01', 'public', 'in_progress')",
        project_id,
        client_id,
        expert_id,
    )
    query(
        url,
        "INSERT INTO milestones (id, project_id, position, title, amount, due_date, status, "
        "depositor_address, payout_address, dispute_reason) VALUES "
        "(%s, %s, 1, 'All', 150, '2030-01-01', 'disputed', %s, %s, %s)",
        milestone_id,
        project_id,
        CLIENT_ADDRESS,
        EXPERT_ADDRESS,
        reason,
    )
    args = {"disputant": by, "detailsHash": "0x" + details_hash(chain_reason).hex()}
    query(
        url,
        "INSERT INTO chain_events (follower, tx_hash, log_index, block_number, block_hash, "
        "name, subject, args) VALUES ('escrow:1337:0x', %s, 0, 7, '0x07', 'Disputed', %s, %s)",
        "0x" + uuid.uuid4().hex,
        "0x" + milestone_id.bytes.rjust(32, b"\0").hex(),
        json.dumps(args),
    )
    return milestone_id


def test_escrow2_keeps_the_reason_as_the_disputing_party_s_with_its_hash(
    migrated_databases: MigratedDatabases,
) -> None:
    url = migrated_databases.create("cc_escrow2")
    config = alembic_config(url)
    plain = libpq(url)
    try:
        command.downgrade(config, "prefs1")
        by_expert = _disputed_milestone(
            plain, "Delivered.", chain_reason="Delivered.", by=EXPERT_ADDRESS
        )
        # The stored text was overwritten by a dispute never sent: it does not match.
        overwritten = _disputed_milestone(
            plain, "Overwritten.", chain_reason="Sent.", by=CLIENT_ADDRESS
        )
        command.upgrade(config, "escrow2")

        rows = query(
            plain,
            "SELECT m.id, m.dispute_hash = r.details_hash, r.reason, "
            "r.account_id = p.expert_id FROM milestone_dispute_reasons r "
            "JOIN milestones m ON m.id = r.milestone_id JOIN projects p ON p.id = m.project_id "
            "ORDER BY r.reason",
        )
        assert rows == [
            (by_expert, True, "Delivered.", True),
            (overwritten, False, "Overwritten.", False),
        ]

        command.downgrade(config, "prefs1")
        assert sorted(query(plain, "SELECT id, dispute_reason FROM milestones")) == sorted(
            [(by_expert, "Delivered."), (overwritten, None)]
        )
    finally:
        migrated_databases.drop(url)
