"""Search highlights worked out in Python (experts/highlight.py, decision 0046): the same
words PostgreSQL's english configuration matches, ts_headline's fragments, escaped HTML."""

from __future__ import annotations

import random
import re

from chainconsult.admin._demo_profiles import expert_texts
from chainconsult.experts.highlight import highlight, lexeme, query_lexemes
from chainconsult.experts.vocabulary import Chain, Skill
from tests.market import query

FILLER = "Ships reliable code for demanding clients across many teams and products every year."


def _marked(html: str) -> list[str]:
    return re.findall(r"<mark>(.*?)</mark>", html)


def test_python_lexemes_are_postgresqls_on_the_demo_profiles_words(database_url: str) -> None:
    rng = random.Random(46)
    texts = []
    for _ in range(300):
        skills = rng.sample(list(Skill), rng.randint(2, 4))
        chains = rng.sample(list(Chain), rng.randint(1, 3))
        texts += expert_texts(rng, skills, chains, rng.randint(1, 12))
    words = sorted({word for text in texts for word in re.findall(r"[^\W_]+", text)})
    assert len(words) > 300

    # Stop words have no lexeme in PostgreSQL and are never in a query: nothing to compare.
    rows = query(
        database_url,
        "SELECT w, (tsvector_to_array(to_tsvector('english', w)))[1] FROM unnest(%s::text[]) w",
        words,
    )
    differing = [(word, pg, lexeme(word)) for word, pg in rows if pg and pg != lexeme(word)]
    assert differing == []


def test_query_lexemes_are_read_from_tsquery_text() -> None:
    assert query_lexemes("'solid' <-> 'auditor' & !'solana'") == {"solid", "auditor", "solana"}
    assert query_lexemes("'o''brien'") == {"o'brien"}
    assert query_lexemes("") == frozenset()


def test_every_matched_word_is_marked_even_where_not_all_query_words_appear() -> None:
    # ts_headline showed the first six words unmarked when the text lacked one of an AND
    # query's words (the profile matched it in its skills).
    html = highlight(
        "Cryptography engineer: elliptic curves and pairings",
        "Works on zkEVM provers, recursive proofs and proof aggregation.",
        query_lexemes("'zk' & 'proof'"),
    )

    assert _marked(html) == ["proofs", "proof"]
    assert html.endswith("recursive <mark>proofs</mark> and <mark>proof</mark> aggregation")


def test_far_apart_matches_make_two_fragments_of_sixteen_words() -> None:
    bio = " ".join(["Audits vaults.", FILLER, FILLER, FILLER, "Writes audit reports."])

    html = highlight("Engineer", bio, query_lexemes("'audit'"))

    first, second = html.split(" … ")
    assert _marked(first) == ["Audits"]
    assert _marked(second) == ["audit"]
    for fragment in (first, second):
        assert len(re.findall(r"[^\W_]+", re.sub("</?mark>", "", fragment))) == 16
    assert first.startswith("Engineer — <mark>Audits</mark> vaults. Ships")
    assert second.endswith("Writes <mark>audit</mark> reports")


def test_the_fragment_with_most_matches_is_shown_when_there_are_more_than_two() -> None:
    bio = " ".join(["Rust.", FILLER, "Rust.", FILLER, "Rust and more Rust.", FILLER, "Rust."])

    html = highlight("Engineer", bio, query_lexemes("'rust'"))

    assert len(html.split(" … ")) == 2
    assert "<mark>Rust</mark> and more <mark>Rust</mark>" in html


def test_a_profile_matched_by_its_name_or_skills_shows_its_first_six_words() -> None:
    html = highlight(
        "Smart contract engineer", "Builds <b>vaults</b> & more.", frozenset({"solid"})
    )

    assert html == "Smart contract engineer — Builds &lt;b&gt;vaults"


def test_signed_numbers_and_hyphenated_words_match_as_postgresql_splits_them() -> None:
    html = highlight(
        "ERC-4337 wallets", "Writes zk-proofs.", query_lexemes("'erc' <-> '-4337' & 'proof'")
    )

    assert html == "<mark>ERC</mark><mark>-4337</mark> wallets — Writes zk-<mark>proofs</mark>"
