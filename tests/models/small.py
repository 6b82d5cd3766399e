"""Small hand-made training data: two taste groups that a model must tell apart, and a cold listener."""

from __future__ import annotations

import datetime as dt

import numpy as np
import scipy.sparse as sp

from playnext.models.interactions import Interactions, ItemMeta

AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def two_tastes(n_users: int = 40, n_items: int = 30, seed: int = 0) -> Interactions:
    """Listeners 0..n/2-1 like rock items (0..n_items/2-1), the rest like jazz items; each listener has met a
    random half of their group's items, so the other half are the right recommendations."""
    rng = np.random.default_rng(seed)
    half_u, half_i = n_users // 2, n_items // 2
    rows, cols, vals = [], [], []
    for u in range(n_users):
        group = np.arange(half_i) if u < half_u else np.arange(half_i, n_items)
        liked = rng.choice(group, size=half_i // 2, replace=False)
        rows += [u] * len(liked)
        cols += liked.tolist()
        vals += rng.uniform(0.5, 3.0, size=len(liked)).tolist()
    matrix = sp.csr_matrix((np.array(vals, np.float32), (rows, cols)), shape=(n_users, n_items))
    genre = np.array(["rock"] * half_i + ["jazz"] * (n_items - half_i), dtype=object)
    meta = ItemMeta(
        item_type=np.array(["track"] * n_items, dtype=object),
        creator=np.array([f"a{i // 3}" for i in range(n_items)], dtype=object),
        genre=genre,
        name=np.array([f"{g} song {i}" for i, g in enumerate(genre)], dtype=object),
        release_days=np.arange(n_items, dtype=float),
    )
    seq_ptr = np.concatenate([[0], np.cumsum(np.diff(matrix.indptr))]).astype(np.int64)
    cooc = (matrix.T @ matrix).tocsr()
    cooc.setdiag(0)
    cooc.eliminate_zeros()
    cooc.data = np.log1p(cooc.data).astype(np.float32)
    return Interactions(
        matrix=matrix,
        users=np.array([f"u{u}" for u in range(n_users)], dtype=object),
        items=np.array([f"t{i}" for i in range(n_items)], dtype=object),
        meta=meta,
        seq_ptr=seq_ptr,
        seq_items=matrix.indices.astype(np.int64),
        user_country=np.array(["SE" if u % 2 else "BR" for u in range(n_users)], dtype=object),
        recent_counts=np.asarray((matrix > 0).sum(axis=0)).ravel().astype(np.float32),
        as_of=AS_OF,
        cooccurrence=cooc,
    )
