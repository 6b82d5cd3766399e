"""Features of (listener, candidate item) pairs for the ranker, computed in blocks with NumPy and SciPy.

Per generator: its score of the pair (NaN where it cannot score) and the candidate's rank in its list (one past
the end when it did not propose it). Per item: popularity, trend, content type, age since release. Per listener:
history length. Per pair: how much of the listener's history shares the item's genre, and its creator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from playnext.models.base import CandidateModel
from playnext.models.interactions import PLAYABLE as ITEM_TYPES  # the content-type feature codes this order
from playnext.models.interactions import Candidates, Interactions


@dataclass
class ItemSide:
    """What features need of items and histories, kept by a trained recommender so it can serve alone."""

    genre: np.ndarray  # (items,) genre code
    creator: np.ndarray  # (items,) creator code
    item_type: np.ndarray  # (items,) index into ITEM_TYPES (-1 other)
    popularity: np.ndarray  # (items,) listeners who met the item
    recent: np.ndarray  # (items,) interactions in the trend window
    release_days: np.ndarray  # (items,) days since release (NaN unknown)

    @classmethod
    def of(cls, data: Interactions) -> ItemSide:
        _, genre = np.unique(data.meta.genre.astype(str), return_inverse=True)
        _, creator = np.unique(data.meta.creator.astype(str), return_inverse=True)
        types = np.array([ITEM_TYPES.index(t) if t in ITEM_TYPES else -1 for t in data.meta.item_type.tolist()])
        return cls(
            genre=genre.astype(np.int64),
            creator=creator.astype(np.int64),
            item_type=types.astype(np.int64),
            popularity=np.asarray((data.matrix > 0).sum(axis=0)).ravel().astype(np.float32),
            recent=data.recent_counts.astype(np.float32),
            release_days=data.meta.release_days.astype(np.float32),
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(self.__dict__)


def _share(history: sp.csr_matrix, codes: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Share of each listener's history (rows of ``history``) whose code equals the candidate item's."""
    n_codes = int(codes.max(initial=0)) + 1
    onehot = sp.csr_matrix(
        (np.ones(len(codes), np.float32), (np.arange(len(codes)), codes)), shape=(len(codes), n_codes)
    )
    per_user = (history @ onehot).tocsr()
    totals = np.asarray(history.sum(axis=1)).ravel()
    # Pairs grouped by listener: look up one sparse row per distinct listener.
    value = np.asarray(per_user[users, codes[items]]).ravel()
    return (value / np.maximum(totals[users], 1e-9)).astype(np.float32)


def rank_lookup(lists: Candidates, rows: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """Rank (1-based) of each (row, item) pair in ``lists``; one past the list length where absent."""
    n = lists.items.shape[1]
    valid = lists.items >= 0
    keys = np.repeat(np.arange(lists.items.shape[0]), n)[valid.ravel()] * n_items + lists.items[valid]
    ranks = np.tile(np.arange(1, n + 1), lists.items.shape[0])[valid.ravel()]
    order = np.argsort(keys)
    keys, ranks = keys[order], ranks[order]
    query = rows.astype(np.int64) * n_items + items
    pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
    found = (len(keys) > 0) & (keys[pos] == query) if len(keys) else np.zeros(len(query), bool)
    return np.where(found, ranks[pos] if len(keys) else 0, n + 1).astype(np.float32)


def feature_names(generators: list[str]) -> list[str]:
    per_gen = [f"{g}_{kind}" for g in generators for kind in ("score", "rank")]
    return [
        *per_gen,
        "log_popularity",
        "trend",
        "item_type",
        "release_days",
        "history_len",
        "genre_share",
        "creator_share",
    ]


def candidate_features(
    generators: dict[str, CandidateModel],
    lists: dict[str, Candidates],
    side: ItemSide,
    history: sp.csr_matrix,
    users: np.ndarray,
    rows: np.ndarray,
    items: np.ndarray,
) -> np.ndarray:
    """Features of pairs (``users[rows]``, ``items``): ``rows`` index the query listeners the ``lists`` are for."""
    cols = []
    n_items = len(side.genre)
    pair_users = users[rows]
    for name, model in generators.items():
        score = model.score(pair_users, items).astype(np.float32)
        score[~np.isfinite(score)] = np.nan
        cols += [score, rank_lookup(lists[name], rows, items, n_items)]
    known = pair_users >= 0
    safe = np.where(known, pair_users, 0)
    distinct, local = np.unique(safe, return_inverse=True)
    hist = history[distinct].tocsr()
    hist.data = np.ones_like(hist.data)
    history_len = np.where(known, np.diff(history.indptr)[safe], 0).astype(np.float32)
    genre_share = np.where(known, _share(hist, side.genre, local, items), 0.0)
    creator_share = np.where(known, _share(hist, side.creator, local, items), 0.0)
    cols += [
        np.log1p(side.popularity[items]),
        np.log1p(side.recent[items]) - np.log1p(side.popularity[items]),
        side.item_type[items].astype(np.float32),
        side.release_days[items],
        history_len,
        genre_share,
        creator_share,
    ]
    return np.column_stack(cols).astype(np.float32)
