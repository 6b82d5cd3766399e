"""Top-K metrics of a recommendation list against a holdout, vectorized over listeners.

Definitions, since papers differ:
- Recall@K: hits / min(K, positives), so a perfect list scores 1 even when a listener has more than K positives;
- NDCG@K: binary gains, DCG over the list divided by the DCG of min(K, positives) hits at the top;
- coverage: distinct items recommended to anyone / items in the catalog;
- intra-list diversity: the share of pairs in a list whose items differ in genre;
- novelty: mean self-information -log2(p) of the recommended items, p = share of training listeners who met it.
"""

from __future__ import annotations

import numpy as np


def hits_matrix(recommended: np.ndarray, positives: list[np.ndarray]) -> np.ndarray:
    """(users, K) booleans: is the item at each rank one of the listener's positives."""
    out = np.zeros(recommended.shape, dtype=bool)
    for row, pos in enumerate(positives):
        out[row] = np.isin(recommended[row], pos)
    return out


def recall_at_k(hits: np.ndarray, n_positives: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    return hits.sum(axis=1) / np.minimum(n_positives, k)


def ndcg_at_k(hits: np.ndarray, n_positives: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discounts).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(n_positives, k) - 1]
    return dcg / ideal


def coverage(recommended: np.ndarray, n_items: int) -> float:
    valid = recommended[recommended >= 0]
    return float(len(np.unique(valid)) / max(n_items, 1))


def intra_list_diversity(recommended: np.ndarray, item_genre: np.ndarray) -> np.ndarray:
    """Share of item pairs in each list whose genres differ (lists of fewer than two items score 0)."""
    genres = np.where(recommended >= 0, item_genre[np.maximum(recommended, 0)], -1)
    valid = recommended >= 0
    same = (genres[:, :, None] == genres[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    n = valid.sum(axis=1)
    pairs = n * (n - 1)
    differ = pairs - (same.sum(axis=(1, 2)) - n)
    return np.where(pairs > 0, differ / np.maximum(pairs, 1), 0.0)


def novelty(recommended: np.ndarray, item_users: np.ndarray, n_users: int) -> np.ndarray:
    p = (item_users + 1.0) / (n_users + 1.0)
    info = -np.log2(p)
    values = np.where(recommended >= 0, info[np.maximum(recommended, 0)], np.nan)
    return np.nanmean(values, axis=1)
