"""What every model is fitted on: listeners × items as a sparse matrix, plus the metadata features need.

Models see integer indexes only; the id arrays translate at the edges. The item universe is the whole catalog
(plus any item events mention), not just items with history, so content models can recommend brand-new items.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

# What can be put in a list and played: the item types of the item universe (a followed artist or show is not one).
PLAYABLE = ("track", "episode", "audiobook")


@dataclass
class ItemMeta:
    """Per-item columns, aligned with ``Interactions.items``."""

    item_type: np.ndarray  # str: track | episode | audiobook
    creator: np.ndarray  # str: artist, show or author id ("" when unknown)
    genre: np.ndarray  # str: first genre ("" when unknown)
    name: np.ndarray  # str: the title, and for text models its creator and genres
    release_days: np.ndarray  # float: days between release and the reference time (NaN when unknown)

    def take(self, index: np.ndarray) -> ItemMeta:
        return ItemMeta(*(getattr(self, f)[index] for f in ("item_type", "creator", "genre", "name", "release_days")))


@dataclass
class Interactions:
    matrix: sp.csr_matrix  # (users, items) float32 confidence, positive entries only
    users: np.ndarray  # user ids by index
    items: np.ndarray  # item ids by index
    meta: ItemMeta
    # Each listener's positive plays in time order: items[seq_ptr[u]:seq_ptr[u+1]] (next-track models).
    seq_ptr: np.ndarray
    seq_items: np.ndarray
    user_country: np.ndarray  # str ("" when unknown)
    recent_counts: np.ndarray  # (items,) interactions in the trend window before ``as_of``
    as_of: dt.datetime
    # Items × items association from the ``item_cooccurrence`` table (PMI of pairs seen together), when built.
    cooccurrence: sp.csr_matrix | None = None
    # Every item each listener played or skipped (positive or not): what "never played" means.
    played: sp.csr_matrix | None = None
    _user_index: dict[str, int] | None = field(default=None, repr=False)
    _item_index: dict[str, int] | None = field(default=None, repr=False)

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    def user_index(self, ids: list[str] | np.ndarray) -> np.ndarray:
        """Indexes of ``ids``; -1 for listeners without history (cold start)."""
        if self._user_index is None:
            self._user_index = {u: i for i, u in enumerate(self.users.tolist())}
        return np.array([self._user_index.get(u, -1) for u in ids], dtype=np.int64)

    def user_row(self, user_id: str) -> int:
        """``user_index`` of one listener: a request's lookup, without building an array."""
        return int(self.user_index([user_id])[0]) if self._user_index is None else self._user_index.get(user_id, -1)

    def item_row(self, item_id: str) -> int:
        """``item_index`` of one item."""
        return int(self.item_index([item_id])[0]) if self._item_index is None else self._item_index.get(item_id, -1)

    def item_index(self, ids: list[str] | np.ndarray) -> np.ndarray:
        if self._item_index is None:
            self._item_index = {u: i for i, u in enumerate(self.items.tolist())}
        return np.array([self._item_index.get(u, -1) for u in ids], dtype=np.int64)

    def sequence(self, user: int) -> np.ndarray:
        return self.seq_items[self.seq_ptr[user] : self.seq_ptr[user + 1]]

    def binary(self) -> sp.csr_matrix:
        out = self.matrix.copy()
        out.data = np.ones_like(out.data)
        return out


@dataclass
class Candidates:
    """Top-n items per query row, best first; ``items`` is -1 and ``scores`` -inf where fewer than n exist."""

    items: np.ndarray  # (rows, n) int64
    scores: np.ndarray  # (rows, n) float32

    @classmethod
    def empty(cls, rows: int, n: int) -> Candidates:
        return cls(np.full((rows, n), -1, np.int64), np.full((rows, n), -np.inf, np.float32))


def top_n(scores: np.ndarray, n: int) -> Candidates:
    """Row-wise top ``n`` of a dense score block by argpartition (O(items) per row, not a full sort)."""
    rows, width = scores.shape
    k = min(n, width)
    if k == 0:
        return Candidates.empty(rows, n)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    items = np.take_along_axis(part, order, axis=1).astype(np.int64)
    best = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    items[~np.isfinite(best)] = -1
    out = Candidates.empty(rows, n)
    out.items[:, :k], out.scores[:, :k] = items, best
    return out


def top_n_of_pairs(rows: np.ndarray, items: np.ndarray, scores: np.ndarray, n_rows: int, n: int) -> Candidates:
    """Row-wise top ``n`` of sparse (row, item, score) triples, best first: a sort over the triples, not a selection
    over a dense (rows × catalog) block that is almost all empty."""
    out = Candidates.empty(n_rows, n)
    finite = np.isfinite(scores)
    rows, items, scores = rows[finite], items[finite], scores[finite]
    order = np.lexsort((-scores, rows))
    rows, items, scores = rows[order], items[order], scores[order]
    starts = np.searchsorted(rows, np.arange(n_rows))
    rank = np.arange(len(rows)) - starts[rows]
    keep = rank < n
    out.items[rows[keep], rank[keep]] = items[keep]
    out.scores[rows[keep], rank[keep]] = scores[keep]
    return out


def save_interactions(data: Interactions, path: Path) -> None:
    """What serving needs of the training data: ids, item metadata, histories and sequences (not co-occurrence,
    which the generators that use it keep themselves)."""
    path.mkdir(parents=True, exist_ok=True)
    m = data.meta
    items = pa.table(
        {
            "id": data.items.tolist(),
            "item_type": m.item_type.tolist(),
            "creator": m.creator.tolist(),
            "genre": m.genre.tolist(),
            "name": m.name.tolist(),
            "release_days": m.release_days,
            "recent_counts": data.recent_counts,
        }
    )
    pq.write_table(items, path / "items.parquet")
    pq.write_table(pa.table({"id": data.users.tolist(), "country": data.user_country.tolist()}), path / "users.parquet")
    x = data.matrix.tocsr()
    played = (data.played if data.played is not None else x).tocsr()
    np.savez(
        path / "history.npz",
        data=x.data,
        indices=x.indices,
        indptr=x.indptr,
        shape=np.array(x.shape),
        seq_ptr=data.seq_ptr,
        seq_items=data.seq_items,
        played_indptr=played.indptr,
        played_indices=played.indices,
        as_of=np.array(data.as_of.timestamp()),
    )


def load_interactions_dir(path: Path) -> Interactions:
    items = pq.read_table(path / "items.parquet")
    users = pq.read_table(path / "users.parquet")

    def col(t: pa.Table, name: str) -> np.ndarray:
        return np.asarray(t[name].to_numpy(zero_copy_only=False), dtype=object)

    with np.load(path / "history.npz", allow_pickle=False) as z:
        matrix = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        seq_ptr, seq_items, as_of = z["seq_ptr"], z["seq_items"], float(z["as_of"])
        indices = z["played_indices"]
        played = sp.csr_matrix((np.ones(len(indices), np.float32), indices, z["played_indptr"]), shape=matrix.shape)
    meta = ItemMeta(
        item_type=col(items, "item_type"),
        creator=col(items, "creator"),
        genre=col(items, "genre"),
        name=col(items, "name"),
        release_days=items["release_days"].to_numpy().astype(float),
    )
    return Interactions(
        matrix=matrix,
        users=col(users, "id"),
        items=col(items, "id"),
        meta=meta,
        seq_ptr=seq_ptr,
        seq_items=seq_items,
        user_country=col(users, "country"),
        recent_counts=items["recent_counts"].to_numpy().astype(np.float32),
        as_of=dt.datetime.fromtimestamp(as_of, dt.UTC),
        played=played,
    )
