"""Next track: follows the current track's taste and never repeats what was just played."""

from __future__ import annotations

import numpy as np

from playnext.surfaces.next_track import (
    POOL,
    RECENT_HISTORY,
    SEQUENCE_EF,
    Search,
    _sequence_candidates,
    next_tracks,
    served,
)
from tests.surfaces.conftest import rock


def test_never_repeats_the_current_track_the_session_or_the_last_plays(version) -> None:
    data = version.data
    recent = ["t2", "t3", "t5"]
    got = next_tracks(version, "u0", "t4", recent, n=15)
    ids = [p.item_id for p in got.items]
    last = set(data.items[data.sequence(0)[-RECENT_HISTORY:]].tolist())
    assert ids and "t4" not in ids and not set(ids) & set(recent) and not set(ids) & last
    assert len(ids) == len(set(ids))


def test_follows_the_current_tracks_taste(version) -> None:
    after_jazz = next_tracks(version, "stranger", "t50", [], n=5)
    assert not after_jazz.fallback
    assert (~rock(version, [p.item_id for p in after_jazz.items])).mean() >= 0.8
    assert after_jazz.items[0].reason.startswith("goes well after")


def test_an_unknown_track_and_listener_fall_back_to_popularity(version) -> None:
    got = next_tracks(version, "stranger", "no-such-track", [], n=5)
    assert got.fallback and len(got.items) == 5


def test_the_live_sessions_skips_and_plays_are_never_proposed(version) -> None:
    free = [p.item_id for p in next_tracks(version, "u0", "t4", [], n=10).items]
    got = [p.item_id for p in next_tracks(version, "u0", "t4", [], n=10, never=[*free[:3], "unknown"]).items]
    assert got and not set(free[:3]) & set(got)


def test_an_indexed_sequence_model_proposes_what_exact_scoring_does(version) -> None:
    """On a large catalog SASRec's continuations come from its voyager index: the same list, give or take."""
    import dataclasses

    from playnext.models.generators import with_index
    from playnext.models.recommender import Recommender

    gens = dict(version.recommender.generators)
    gens["sasrec"] = with_index(gens["sasrec"], version.data.n_items, min_items=0, ef=200)
    indexed = dataclasses.replace(version, recommender=Recommender(gens, None, 40).attach(version.data), derived={})
    for user, track in [("u0", "t4"), ("u30", "t50"), ("stranger", "t10")]:
        exact = [p.item_id for p in next_tracks(version, user, track, [], n=10).items]
        approx = [p.item_id for p in next_tracks(indexed, user, track, [], n=10).items]
        assert len(set(exact) & set(approx)) >= 8, (user, exact, approx)
    # A search of the index's whole breadth or an exact one (``bench/next_track.py`` weighs them) are asked per call.
    assert served(indexed) == Search(POOL // 2, SEQUENCE_EF) and served(version) == Search(POOL, None)
    exact_search = [p.item_id for p in next_tracks(indexed, "u0", "t4", [], n=10, search=Search(POOL, None)).items]
    assert exact_search == [p.item_id for p in next_tracks(version, "u0", "t4", [], n=10).items]
    sequence = version.data.sequence(0)
    assert len(_sequence_candidates(indexed, sequence, None)[0]) > 7  # the served search: every indexed item here
    items, model, vector = _sequence_candidates(indexed, sequence, Search(7, None))
    assert sorted(items.tolist()) == sorted(np.argsort(-(model.item_factors_ @ vector))[:7].tolist())
    assert 0 < len(_sequence_candidates(indexed, sequence, Search(7, 50))[0]) <= 7


def test_an_unknown_current_track_keeps_every_track_proposable(version) -> None:
    """Nothing is banned for a track the model does not know (its index, -1, must not stand for the last item)."""
    data = version.data
    assert data.n_items <= 800  # the fallback pool covers the whole catalog
    got = next_tracks(version, "stranger", "no-such-track", [], n=data.n_items)
    assert {p.item_id for p in got.items} == set(data.items[data.meta.item_type == "track"].tolist())
