"""The trigram index: the postings a plain reading of each title gives, a deterministic cut, and search through it
finding the close matches and misspelt titles that scoring every title finds."""

from __future__ import annotations

import numpy as np
import pytest
from bench.search import misspelt
from rapidfuzz import utils

from playnext.index import trigrams
from playnext.index.trigrams import TrigramIndex
from playnext.surfaces.search import text_matches
from playnext.synth.catalog import catalog_tables
from playnext.synth.world import WorldParams, build_world


def _reference(titles: list[str]) -> dict[str, set[int]]:
    postings: dict[str, set[int]] = {}
    for number, title in enumerate(titles):
        padded = f"  {title} "
        for at in range(len(padded) - 2):
            postings.setdefault(padded[at : at + 3], set()).add(number)
    return postings


def test_postings_are_every_titles_distinct_trigrams_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trigrams, "BLOCK", 3)  # titles of different lengths in different blocks
    titles = ["toy story", "", "björk", "東京 tokyo", "aaaa", "a" * 300, "story toy", "x"]
    index = TrigramIndex(titles)
    expected = _reference(titles)
    assert len(index.vocabulary) == len(expected)
    got = {int(code): set(index.postings[row].indices.tolist()) for row, code in enumerate(index.vocabulary)}
    by_code = {(ord(g[0]) << 42) | (ord(g[1]) << 21) | ord(g[2]): rows for g, rows in expected.items()}
    assert got == by_code


def test_candidates_are_those_sharing_most_then_the_earliest_in_catalog_order() -> None:
    index = TrigramIndex(["abd", "abc x", "xyz", "abc"])
    # "  abc ": "  a", " ab", "abc", "bc ". "abc x" and "abc" share all four, "abd" two, "xyz" none.
    assert index.candidates("abc", 10).tolist() == [0, 1, 3]
    assert index.candidates("abc", 2).tolist() == [1, 3]
    assert index.candidates("abc", 1).tolist() == [1]  # a tie: the earlier title
    assert index.candidates("qqq", 10) is None
    assert TrigramIndex([]).candidates("abc", 10) is None


def test_search_through_the_index_finds_what_scoring_every_title_finds() -> None:
    tables = catalog_tables(build_world(WorldParams(users=1, tracks=10_000, days=1)))
    titles = np.array([utils.default_process(n) for t in tables.values() for n in t["name"].to_pylist()], dtype=object)
    index = TrigramIndex(titles.tolist())
    rng = np.random.default_rng(1)
    sources = rng.integers(0, len(titles), 80)
    queries = [misspelt(rng, titles[i]) for i in sources]
    pool = len(titles) // 10
    full = [text_matches(titles, None, q) for q in queries]
    fast = [text_matches(titles, index, q, pool=pool) for q in queries]
    assert all(len(index.candidates(q, pool)) <= pool for q in queries)  # a tenth of the catalog scored

    def found(answers: list[tuple[np.ndarray, np.ndarray]]) -> int:
        tops = [{titles[i] for i in items[:20]} for items, _ in answers]
        return sum(titles[s] in top for s, top in zip(sources, tops, strict=True))

    assert found(fast) >= found(full) - 2 and found(full) >= 60  # the misspelt title, as often
    # Every close match (80 of 100 or more) is found, with its score: what the index can miss is weak matches
    # (a short title that a partial match scores 68) that share no trigram with the query.
    for (a, sa), (b, sb) in zip(full, fast, strict=True):
        assert dict(zip(a[sa >= 0.8].tolist(), sa[sa >= 0.8].tolist(), strict=True)) == dict(
            zip(b[sb >= 0.8].tolist(), sb[sb >= 0.8].tolist(), strict=True)
        )
