"""Discover Weekly: tracks the listener has never played, at most ``per_artist`` per artist, the same all ISO week.

The ranked candidates are sampled without replacement (Gumbel top-k over their ranks) with a seed made of the
listener and the ISO week: the same week gives the same list, the next week a fresh one, and better-ranked
tracks stay the likelier picks. A listener without history gets popular tracks of their country, sampled the
same way.
"""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np

from playnext.models.registry import ModelVersion
from playnext.surfaces.common import SurfaceList, because, cap_per_creator, picks, popular_order, seed_of

POOL = 300
LENGTH = 30


@functools.lru_cache(maxsize=16)
def iso_week(day: dt.date) -> str:
    """Looked up by every Discover Weekly answer (is its stored list this week's?): formatted once per day."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def discover_weekly(
    version: ModelVersion, user_id: str, day: dt.date, *, n: int = LENGTH, per_artist: int = 2,
    country: str | None = None, candidates: np.ndarray | None = None,
) -> SurfaceList:  # fmt: skip
    """``candidates``: the recommender's ranked items for the listener, when a batch has them already."""
    data = version.data
    row = data.user_row(user_id)
    tracks = data.meta.item_type == "track"
    if row >= 0:
        if candidates is None:
            candidates = version.recommender.recommend(np.array([row]), POOL, exclude_seen=True).items[0]
        candidates = candidates[candidates >= 0][:POOL]
        played = data.played[row].indices if data.played is not None else data.matrix[row].indices
        fallback = False
    else:
        candidates = popular_order(version, country)[:POOL]
        played = np.zeros(0, np.int64)
        fallback = True
    candidates = candidates[tracks[candidates] & ~np.isin(candidates, played)]
    rng = np.random.default_rng(seed_of("discover-weekly", user_id, iso_week(day)))
    ranks = np.arange(len(candidates))
    # One unit of Gumbel noise per n/3 ranks: picks come mostly from the best ~2n candidates, different each week.
    keys = -ranks / max(n / 3.0, 1.0) + rng.gumbel(size=len(candidates))
    order = candidates[np.argsort(-keys, kind="stable")]
    chosen = cap_per_creator(order, data.meta.creator, per_artist, n)
    history = data.sequence(row)[-200:] if row >= 0 else np.zeros(0, np.int64)
    default = "popular with listeners like you" if fallback else "picked for you"
    reasons = because(version, np.unique(history), chosen, default) if not fallback else [default] * len(chosen)
    scores = np.linspace(1.0, 0.0, num=len(chosen), endpoint=False) if len(chosen) else np.zeros(0)
    return SurfaceList(
        "discover-weekly", picks(version, chosen, scores, reasons), fallback, version.id, {"week": iso_week(day)}
    )
