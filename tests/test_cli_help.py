"""Every `chainconsult ... --help` reads as whole sentences with its defaults shown, and
`--version` answers. The commands are found by walking the app, so a new one is held to the
same rules."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from chainconsult import __version__
from chainconsult.cli import cli

# The width of a common terminal; click wraps the help to it.
TERMINAL = {"COLUMNS": "80"}


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands(get_command(cli)))


def _flat(text: str) -> str:
    """The text as one line: click rewraps help to the terminal, sentences stay whole."""
    return " ".join(text.split())


def _paragraphs(help_text: str) -> list[str]:
    return [_flat(part) for part in inspect.cleandoc(help_text).split("\n\n")]


def _is_sentence(text: str) -> bool:
    return (text[:1].isupper() or text[:1].isdigit()) and text.endswith(".")


def _help(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], env=TERMINAL)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda path: " ".join(path) or "chainconsult")
def test_every_help_text_is_shown_whole_as_sentences_with_its_defaults(
    path: tuple[str, ...],
) -> None:
    command = COMMANDS[path]
    output = _help(*path)
    flat = _flat(output)

    for paragraph in _paragraphs(command.help or ""):
        assert _is_sentence(paragraph), paragraph
        assert paragraph in flat
    for param in command.params:
        if not param.help:
            continue
        text = _flat(param.help)
        assert _is_sentence(text), text
        assert text in flat
        if isinstance(param.show_default, str):
            assert f"{text} [default: ({param.show_default})" in flat
        elif param.default not in (None, False) and param.show_default is not False:
            assert f"{text} [default: {param.default}" in flat
    for name, sub in getattr(command, "commands", {}).items():
        # The list names each subcommand by its first sentence, whole.
        assert f"{name} {_paragraphs(sub.help or '')[0]}" in flat
    usage, rest = output.split("\n", 1)
    assert usage.startswith("Usage: chainconsult")
    assert "..." not in rest  # a truncated command summary
    assert " ." not in flat


def test_worker_help_shows_where_its_defaults_come_from() -> None:
    flat = _flat(_help("worker"))

    assert "Number of jobs this worker runs at once. [default: (MAX_CONCURRENT_JOBS)" in flat
    assert "repeat the option for several queues. [default: (every queue)]" in flat


def test_the_command_list_shows_each_first_sentence_on_one_line() -> None:
    lines = _help().splitlines()

    assert any(re.fullmatch(r"\s+serve\s+Run the API server\.", line) for line in lines)
    assert any(
        re.fullmatch(r"\s+jobs\s+Inspect and steer background jobs\.", line) for line in lines
    )


def test_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])

    assert result.exit_code == 0
    assert result.output == f"chainconsult {__version__}\n"
