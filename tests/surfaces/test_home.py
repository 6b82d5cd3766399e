"""Home: shelves ordered by the bandit with logged propensities, no item twice, something for everyone."""

from __future__ import annotations

import numpy as np

from playnext.surfaces.bandit import ShelfStats, order_shelves
from playnext.surfaces.home import home


def test_shelves_never_repeat_an_item_and_explain_every_card(version) -> None:
    page = home(version, "u0", ShelfStats(), np.random.default_rng(0), size=8)
    ids = {s.id for s in page.shelves}
    assert {"made-for-you", "because-you-listened", "artists", "popular"} <= ids
    cards = [(c.item_type, c.item_id) for s in page.shelves for c in s.items]
    assert len(cards) == len(set(cards))
    assert all(c.reason for s in page.shelves for c in s.items)
    assert all(0 < s.propensity <= 1 for s in page.shelves)
    mixes = next(s for s in page.shelves if s.id == "made-for-you")
    assert mixes.items[0].reason == "Rock Mix" and mixes.items[0].item_type == "mix"
    because = next(s for s in page.shelves if s.id == "because-you-listened")
    assert because.title.startswith("Because you listened to ")


def test_a_new_listener_gets_shelves_that_need_no_history(version) -> None:
    page = home(version, "stranger", ShelfStats(), np.random.default_rng(0), country="SE")
    assert page.fallback and page.segment == "new"
    assert {s.id for s in page.shelves} >= {"popular", "artists"}
    assert "made-for-you" not in {s.id for s in page.shelves}


def test_the_bandit_puts_the_shelf_that_works_first_most_of_the_time() -> None:
    stats = ShelfStats()
    stats.add("light", "popular", streamed=5, shown=100)
    stats.add("light", "artists", streamed=60, shown=100)
    rng = np.random.default_rng(1)
    firsts = [order_shelves(stats, "light", ["popular", "artists"], rng)[0][0] for _ in range(200)]
    assert firsts.count("artists") > 190
    # With no evidence every order is as likely: propensities near 1/2 for two shelves.
    _, propensity = order_shelves(ShelfStats(), "new", ["popular", "artists"], rng)
    assert np.allclose(propensity, 0.5, atol=0.08)
    # The propensity logged is the chance of the order shown: near 1 for a shelf that always wins.
    order, propensity = order_shelves(stats, "light", ["popular", "artists"], rng)
    assert order[0] == "artists" and propensity[0] > 0.95
