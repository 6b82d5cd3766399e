"""Search: typos still find the title; the listener's taste orders equally good matches."""

from __future__ import annotations

import itertools

from playnext.surfaces.search import search
from tests.surfaces.conftest import rock


def test_a_typo_still_finds_the_title(version) -> None:
    got = search(version, "rokc song 12", None, n=3)
    assert got.items[0].item_id == "t12" and got.items[0].reason.startswith("matches")


def test_taste_orders_equally_good_matches(version) -> None:
    # "song" matches every title equally well; a rock fan and a jazz fan get their own genre first.
    fan_of_rock = [p.item_id for p in search(version, "song", "u0", n=10).items]
    fan_of_jazz = [p.item_id for p in search(version, "song", "u30", n=10).items]
    assert rock(version, fan_of_rock).mean() >= 0.8 and (~rock(version, fan_of_jazz)).mean() >= 0.8


def test_nothing_similar_is_an_empty_list(version) -> None:
    assert search(version, "zzzzqqqq", "u0").items == []


def test_matches_and_their_order_are_rapidfuzz_extracts(version) -> None:
    """Scoring the catalog with ``cdist`` (which lets go of the GIL) finds what ``process.extract`` does, with
    fractional scores kept and ties in catalog order."""
    from rapidfuzz import fuzz, process, utils

    from playnext.surfaces.search import CANDIDATES, MIN_SCORE, TASTE_WEIGHT

    titles = [utils.default_process(n) for n in version.data.meta.name.tolist()]
    for query in ("rokc song 12", "song", "jaz"):
        expected = process.extract(utils.default_process(query), titles, scorer=fuzz.WRatio, processor=None,
                                   limit=CANDIDATES, score_cutoff=MIN_SCORE)  # fmt: skip
        got = search(version, query, None, n=len(titles))  # no listener: taste is popularity, a tie-breaker
        text = {version.data.items[i]: score / 100 for _, score, i in expected}
        assert {p.item_id for p in got.items} == set(text)
        # Text decides; taste moves an item only past matches within TASTE_WEIGHT's few points.
        shown = [text[p.item_id] for p in got.items]
        assert all(a >= b - 4 * TASTE_WEIGHT for a, b in itertools.pairwise(shown))
