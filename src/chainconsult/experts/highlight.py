"""Search highlights, worked out in Python from the text a directory page already holds and
the query's lexemes as PostgreSQL parsed them: ``ts_headline`` parsed each profile's text
again and cost about half of an uncached search (docs/decisions/0046-relevance-search-p99.md).

A word matches when its lexeme is one of the query's: the word lower-cased and, unless it
holds a digit, stemmed by the Snowball English stemmer, as PostgreSQL's ``english``
configuration does (a test holds the two equal over the demo profiles' words). The query's
lexemes come from PostgreSQL itself (``websearch_to_tsquery``), so its stop words and
syntax stay PostgreSQL's. Fragments are chosen as ``ts_headline`` does with ``MaxFragments=2,
MaxWords=16, MinWords=6``: the spans richest in matches, stretched to 16 words."""

from __future__ import annotations

import html
import re
from bisect import bisect_left

import Stemmer

MAX_FRAGMENTS = 2
MAX_WORDS = 16
"""Words of a fragment."""
MIN_WORDS = 6
"""Words shown when nothing matches in the headline or bio (the name or skills matched)."""
FRAGMENT_SEPARATOR = " … "
HEADLINE_SEPARATOR = " — "

# PostgreSQL's parser ends a word at anything but a letter or digit ("zk-proofs": zk, proofs),
# but reads a hyphen before digits as a sign ("ERC-4337": erc, -4337). Split with the group:
# text between words at even indexes, the words at odd ones.
_WORDS = re.compile(r"(-\d+(?![^\W_])|[^\W_]+)")
# A lexeme in tsquery text: 'solid' <-> 'auditor', quotes inside doubled.
_QUERY_LEXEME = re.compile(r"'((?:[^']|'')*)'")
_STEMMER = Stemmer.Stemmer("english")
_MARK_START, _MARK_END = "\x02", "\x03"
_NO_MARKS = str.maketrans(_MARK_START + _MARK_END, "  ")
_LEXEMES: dict[str, str] = {}
"""Lexeme by word as written: a directory's words are few, and a page has hundreds of them."""
_MAX_LEXEMES = 100_000


def query_lexemes(tsquery: str) -> frozenset[str]:
    """The lexemes of a tsquery's text form (``'zk' & 'proof'``): what a word must stem to."""
    return frozenset(match.group(1).replace("''", "'") for match in _QUERY_LEXEME.finditer(tsquery))


def lexeme(word: str) -> str:
    """``word`` as PostgreSQL's english configuration indexes it (stop words aside)."""
    found = _LEXEMES.get(word)
    if found is None:
        lowered = word.lower()
        # Words with digits (erc20, l2) go to the 'simple' dictionary: lower case only.
        if any(character.isdigit() for character in lowered):
            found = lowered
        else:
            found = str(_STEMMER.stemWord(lowered))
        if len(_LEXEMES) >= _MAX_LEXEMES:
            _LEXEMES.clear()
        _LEXEMES[word] = found
    return found


def highlight(headline: str, bio: str, lexemes: frozenset[str]) -> str:
    """The headline and bio as escaped HTML, matched words in ``<mark>``: up to two
    fragments of 16 words joined by `` … ``, or the first 6 words when nothing matches."""
    # Runs of white space as one blank (str.split: several times quicker than a regex); the
    # control characters that stand for the marks below cannot come from the text.
    text = " ".join(f"{headline}{HEADLINE_SEPARATOR}{bio}".translate(_NO_MARKS).split())
    parts = _WORDS.split(text)
    words = parts[1::2]
    if not words:
        return ""
    known = _LEXEMES.get
    matches = [n for n, word in enumerate(words) if (known(word) or lexeme(word)) in lexemes]
    for n in matches:
        parts[2 * n + 1] = f"{_MARK_START}{words[n]}{_MARK_END}"
    spans = _fragments(matches, len(words)) if matches else [(0, min(len(words), MIN_WORDS) - 1)]
    # Each fragment escaped at once, from its first word to the end of its last.
    fragments = (html.escape("".join(parts[2 * a + 1 : 2 * b + 2])) for a, b in spans)
    marked = FRAGMENT_SEPARATOR.join(fragments)
    return marked.replace(_MARK_START, "<mark>").replace(_MARK_END, "</mark>")


def _fragments(matches: list[int], count: int) -> list[tuple[int, int]]:
    """Spans (first and last word) of up to MAX_FRAGMENTS fragments of ``count`` words: each
    the window of MAX_WORDS words holding most of the matches not shown yet (the earliest
    among equals), stretched evenly to MAX_WORDS words without overlapping another."""
    chosen: list[tuple[int, int]] = []
    left = matches
    while left and len(chosen) < MAX_FRAGMENTS:
        most, first, last = 0, 0, 0
        for n, start in enumerate(left):
            # The matches from this one to MAX_WORDS words on: left is in word order.
            end = bisect_left(left, start + MAX_WORDS, n) - 1
            if end - n + 1 > most:
                most, first, last = end - n + 1, start, left[end]
        low, high = _stretched(first, last, count, chosen)
        chosen.append((low, high))
        left = [m for m in left if m < low or m > high]
    return sorted(chosen)


def _stretched(first: int, last: int, count: int, taken: list[tuple[int, int]]) -> tuple[int, int]:
    """``first``..``last`` widened to MAX_WORDS words, half of the room before it, the rest
    after, within the text and outside the ``taken`` spans."""
    low = max([0, *(b + 1 for a, b in taken if b < first)])
    high = min([count - 1, *(a - 1 for a, b in taken if a > last)])
    room = MAX_WORDS - (last - first + 1)
    first = max(low, first - room // 2)
    last = min(high, first + MAX_WORDS - 1)
    # Near the end of the text, what is left goes before.
    first = max(low, min(first, last - MAX_WORDS + 1))
    return first, last
