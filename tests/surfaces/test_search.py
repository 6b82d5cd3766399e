"""Search: typos still find the title; the listener's taste orders equally good matches."""

from __future__ import annotations

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
