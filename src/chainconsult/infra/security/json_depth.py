"""How deeply a JSON body nests, measured while it streams in, so a body of a million
opening brackets is refused at the first one past the limit instead of reaching a parser.

Hand-written because parsers (json, orjson) only report depth by failing at their own
recursion limit (1,000 or more), after doing the work; this scanner only looks at brackets
and string boundaries, with the regex engine skipping everything else."""

from __future__ import annotations

import re

_STRUCTURE = re.compile(rb'[\[\]{}"]')
_STRING_END = re.compile(rb'["\\]')
_QUOTE = ord('"')
_OPENERS = frozenset(b"[{")


class JsonDepthScanner:
    __slots__ = ("depth", "escaped", "in_string", "max_depth")

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.depth = 0
        self.in_string = False
        self.escaped = False

    def feed(self, chunk: bytes) -> bool:
        """Scan the next chunk; False as soon as nesting goes past ``max_depth``. Malformed
        JSON is left for the parser to report."""
        pos = 0
        if self.escaped and chunk:
            # The previous chunk ended inside a string on a backslash: skip what it escapes.
            pos, self.escaped = 1, False
        end = len(chunk)
        while pos < end:
            if self.in_string:
                match = _STRING_END.search(chunk, pos)
                if match is None:
                    return True
                if chunk[match.start()] == _QUOTE:
                    self.in_string = False
                    pos = match.end()
                elif match.end() >= end:
                    self.escaped = True
                    return True
                else:
                    pos = match.end() + 1
                continue
            match = _STRUCTURE.search(chunk, pos)
            if match is None:
                return True
            char = chunk[match.start()]
            pos = match.end()
            if char == _QUOTE:
                self.in_string = True
            elif char in _OPENERS:
                self.depth += 1
                if self.depth > self.max_depth:
                    return False
            else:
                self.depth -= 1
        return True
