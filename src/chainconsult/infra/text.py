"""Free text from users: one rule for what a text field may hold, and one for making any
stored text safe where it must be a single line (an email header).

Request schemas declare every text field with ``SingleLine`` (names, titles, headlines) or
``MultiLine`` (bios, descriptions, letters, notes)::

    Title = Annotated[str, SingleLine(min_length=5, max_length=200)]

Both store Unicode NFC with the ends stripped, and lengths count that stored text. A single
line holds no control character and no invisible formatting character (bidi overrides,
zero-width spaces); multiple lines may also hold tabs and line breaks, stored as ``\\n``
whatever the client sent (``\\r\\n``, ``\\r``, U+2028...). Refused text is a 422 naming the
character and where it is. Passwords are secrets, not text to show: they keep any character.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from annotated_types import GroupedMetadata
from pydantic import AfterValidator, BeforeValidator, StringConstraints
from pydantic_core import PydanticCustomError

# Format characters that real writing needs: the zero-width (non-)joiner of Persian and Indic
# scripts and of emoji sequences, and the tag characters of subdivision flags.
_WRITING_FORMATS = frozenset({"\u200c", "\u200d", *map(chr, range(0xE0020, 0xE0080))})
# Cc control, Cf format, Cs lone surrogate, and the Unicode line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_LINE_BREAKS = re.compile("\r\n|[\r\x85\u2028\u2029]")
_NO_CONTROLS: frozenset[str] = frozenset()
_LINE_CONTROLS = frozenset("\n\t")
_CONTROL_NAMES = {
    "\x00": "NULL",
    "\t": "TAB",
    "\n": "LINE FEED",
    "\r": "CARRIAGE RETURN",
    "\x1b": "ESCAPE",
}


def _refused(char: str, allowed: frozenset[str]) -> bool:
    if char in allowed or char in _WRITING_FORMATS:
        return False
    return unicodedata.category(char) in _REFUSED_CATEGORIES


def _check(value: str, allowed: frozenset[str], rule: str) -> str:
    for index, char in enumerate(value):
        if _refused(char, allowed):
            name = unicodedata.name(char, "") or _CONTROL_NAMES.get(char, "a control character")
            raise PydanticCustomError(
                "text_character",
                "{rule}: U+{code} ({name}) at character {position} is not allowed",
                {"rule": rule, "code": f"{ord(char):04X}", "name": name, "position": index + 1},
            )
    return value


def check_single_line(value: str) -> str:
    return _check(value, _NO_CONTROLS, "Must be one line of visible text")


def check_multi_line(value: str) -> str:
    return _check(value, _LINE_CONTROLS, "Must be visible text, tabs and line breaks")


def _normal(value: object) -> object:
    # Anything but a string goes on to the string check, which refuses it.
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


def _normal_lines(value: object) -> object:
    if not isinstance(value, str):
        return value
    return _LINE_BREAKS.sub("\n", unicodedata.normalize("NFC", value))


@dataclass(frozen=True, slots=True)
class SingleLine(GroupedMetadata):
    """A name, title or headline: one line of visible text."""

    min_length: int = 1
    max_length: int | None = None

    def __iter__(self) -> Iterator[object]:
        # The before-validator runs ahead of the string constraints wherever it is listed,
        # so lengths count the normalised, stripped text.
        yield StringConstraints(
            strip_whitespace=True, min_length=self.min_length, max_length=self.max_length
        )
        yield BeforeValidator(_normal)
        yield AfterValidator(check_single_line)


@dataclass(frozen=True, slots=True)
class MultiLine(GroupedMetadata):
    """A bio, description, letter or note: lines of visible text, tabs allowed."""

    min_length: int = 0
    max_length: int | None = None

    def __iter__(self) -> Iterator[object]:
        yield StringConstraints(
            strip_whitespace=True, min_length=self.min_length, max_length=self.max_length
        )
        yield BeforeValidator(_normal_lines)
        yield AfterValidator(check_multi_line)


def one_line(value: str) -> str:
    """Any text as one line fit for a header, whatever it holds: every run of whitespace
    (line breaks included) becomes one space; other control and invisible formatting
    characters are dropped."""
    visible = "".join(char for char in value if char.isspace() or not _refused(char, _NO_CONTROLS))
    return " ".join(visible.split())


def byte_size(size: int) -> str:
    """A size in bytes as a person reads it: ``26214400`` is "25 MiB", ``1536`` "1.5 KiB"."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"
