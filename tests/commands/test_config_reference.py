"""`chainconsult config-reference`: docs/configuration.md is rendered from the settings object,
and the committed page is held to what it renders."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings
from typer.testing import CliRunner

from chainconsult.cli import cli
from chainconsult.commands import config_reference
from chainconsult.config import Settings

REPO = Path(__file__).resolve().parents[2]


def _rows(text: str) -> dict[str, list[str]]:
    """Table rows by variable name: the cells after the name."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_committed_configuration_reference_is_up_to_date() -> None:
    committed = (REPO / "docs" / "configuration.md").read_text()

    assert committed == config_reference.render(), (
        "docs/configuration.md is stale: run `make config-reference`"
    )


def test_every_variable_of_the_settings_has_a_row_with_its_meaning() -> None:
    rows = _rows(config_reference.render())
    names = {
        str(field.validation_alias)
        for group in Settings.model_fields.values()
        for field in group.annotation.model_fields.values()  # type: ignore[union-attr]
    }

    assert set(rows) == names
    assert all(meaning for _, _, meaning in rows.values())
    assert rows["DATABASE_MAX_CONNECTIONS"] == [
        "`20`",
        "integer, 1 to 1000",
        "Connections kept in each process's pool.",
    ]
    assert rows["EMAIL_SERVICE"][:2] == ["`console`", r"`smtp` \| `console` \| `disabled`"]
    assert rows["DATABASE_URL"][0] == "unset"


def test_reference_shows_the_defaults_whatever_this_environment_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_MAX_CONNECTIONS", "3")
    monkeypatch.setenv("PASSWORD_HASH_MEMORY_KIB", "8")

    rows = _rows(config_reference.render())

    assert rows["DATABASE_MAX_CONNECTIONS"][0] == "`20`"
    assert rows["PASSWORD_HASH_MEMORY_KIB"][0] == "`65536`"


def test_check_fails_on_a_stale_page_and_passes_on_a_fresh_one(tmp_path: Path) -> None:
    page = tmp_path / "configuration.md"
    runner = CliRunner()

    missing = runner.invoke(cli, ["config-reference", "--output", str(page), "--check"])
    written = runner.invoke(cli, ["config-reference", "--output", str(page)])
    rendered = page.read_text()
    fresh = runner.invoke(cli, ["config-reference", "--output", str(page), "--check"])
    page.write_text(page.read_text().replace("| `20` |", "| `25` |"))
    stale = runner.invoke(cli, ["config-reference", "--output", str(page), "--check"])

    assert missing.exit_code == 2
    assert written.exit_code == 0
    assert rendered == config_reference.render()
    assert fresh.exit_code == 0
    assert stale.exit_code == 2
    assert "out of date: run `make config-reference`" in stale.output


class _Undocumented(BaseSettings):
    documented: int = Field(1, validation_alias="DOCUMENTED_SETTING")
    """Something, in seconds."""
    bare: int = Field(2, validation_alias="UNDOCUMENTED_SETTING")


class _SettingsWithAGap(BaseSettings):
    extra: _Undocumented = Field(default_factory=_Undocumented)


def test_a_setting_without_a_docstring_stops_the_reference_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(config_reference, "Settings", _SettingsWithAGap)
    page = tmp_path / "configuration.md"

    result = CliRunner().invoke(cli, ["config-reference", "--output", str(page)])

    assert result.exit_code == 2
    assert result.output.startswith("error: UNDOCUMENTED_SETTING (_Undocumented.bare) has no")
    assert not page.exists()
