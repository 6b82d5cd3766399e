"""Shelf order on Home: Thompson sampling over Beta posteriors of each shelf's stream rate, per listener segment.

Each shelf (arm) keeps successes and failures from logged Home impressions: an impression whose item was
streamed is a success. A request samples every shelf's rate from Beta(1 + s, 1 + f) for the listener's segment
(new, light, heavy) and orders shelves by the samples: shelves that work are shown higher more often, and the
others still get explored. The probability of each shelf landing at each position is estimated by repeating the
draw (``PROPENSITY_DRAWS`` times, once per segment and set of shelves), and logged as the impressions' propensity
for off-policy evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from playnext.config import Settings
from playnext.models.registry import ModelVersion

PROPENSITY_DRAWS = 4000
SEGMENTS = ("new", "light", "heavy")


@dataclass
class ShelfStats:
    """Successes and failures per (segment, shelf)."""

    counts: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)

    # (segment, shelves) → chance of each shelf at each position; the counts only change by ``add`` (which
    # clears it), so each page layout is estimated once instead of on every request.
    _chances: dict[tuple[str, tuple[str, ...]], np.ndarray] = field(default_factory=dict, repr=False)

    def add(self, segment: str, shelf: str, streamed: int, shown: int) -> None:
        s, f = self.counts.get((segment, shelf), (0, 0))
        self.counts[(segment, shelf)] = (s + streamed, f + shown - streamed)
        self._chances.clear()

    def beta(self, segment: str, shelves: list[str]) -> tuple[np.ndarray, np.ndarray]:
        got = [self.counts.get((segment, shelf), (0, 0)) for shelf in shelves]
        return np.array([1.0 + s for s, _ in got]), np.array([1.0 + f for _, f in got])

    def position_chances(self, segment: str, shelves: list[str]) -> np.ndarray:
        """(shelves, positions): how often Thompson sampling puts each shelf at each position, by
        ``PROPENSITY_DRAWS`` redraws with a fixed seed (so the logged propensities are reproducible)."""
        key = (segment, tuple(shelves))
        if key not in self._chances:
            a, b = self.beta(segment, shelves)
            rng = np.random.default_rng(0)
            draws = np.argsort(-rng.beta(a[:, None], b[:, None], size=(len(shelves), PROPENSITY_DRAWS)), axis=0)
            # draws[p, d] is the shelf at position p in draw d.
            chances = np.stack([(draws == shelf).mean(axis=1) for shelf in range(len(shelves))])
            self._chances[key] = chances
        return self._chances[key]


def order_shelves(
    stats: ShelfStats, segment: str, shelves: list[str], rng: np.random.Generator
) -> tuple[list[str], np.ndarray]:
    """(shelves in the sampled order, probability of each of them being at the position it got)."""
    a, b = stats.beta(segment, shelves)
    order = np.argsort(-rng.beta(a, b), kind="stable")
    chances = stats.position_chances(segment, shelves)
    propensity = chances[order, np.arange(len(order))]
    return [shelves[i] for i in order], np.maximum(propensity, 1.0 / PROPENSITY_DRAWS)


def segment_of(history_len: int, heavy_from: float) -> str:
    if history_len == 0:
        return "new"
    return "heavy" if history_len > heavy_from else "light"


def heavy_from(version: ModelVersion) -> float:
    """Listeners with more liked items than this (the 80th percentile) are the heavy segment; once per version."""

    def quantile() -> float:
        counts = np.diff(version.data.matrix.indptr)
        return float(np.quantile(counts, 0.8)) if len(counts) else 0.0

    return version.derive("heavy_from", quantile)


def shelf_stats_from_lake(settings: Settings, version: ModelVersion) -> ShelfStats:
    """Streams and shows of every Home shelf, per segment of the listener, from the ``outcomes`` table (empty,
    so every shelf is equally likely, until a pipeline run has turned Home impressions into outcomes)."""
    from playnext.lake.query import connect

    stats = ShelfStats()
    con = connect(settings)
    tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "outcomes" not in tables:
        return stats
    rows = con.execute(
        "SELECT user_id, substr(surface, 6) AS shelf, count(*) AS shown, count(*) FILTER (streamed) AS streams "
        "FROM outcomes WHERE surface LIKE 'home/%' GROUP BY ALL"
    ).fetchall()
    if not rows:
        return stats
    counts = np.diff(version.data.matrix.indptr)
    heavy = heavy_from(version)
    users = version.data.user_index([r[0] for r in rows])
    for (_, shelf, shown, streams), row in zip(rows, users.tolist(), strict=True):
        stats.add(segment_of(int(counts[row]) if row >= 0 else 0, heavy), shelf, int(streams), int(shown))
    return stats
