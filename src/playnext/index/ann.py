"""An ANN index over a vector model's items, and a generator that answers ``recommend`` through it.

``AnnIndexed`` wraps any model with ``user_vectors``/``item_vectors`` and is itself a ``CandidateModel``: exact
scoring is O(items) per listener, the index is sub-linear, and every other call (``score``, ``similar_items``)
falls through to the wrapped model. Seen items are removed after the search, so the index is queried for
``n`` plus the largest history in the batch (exact search takes over when that approaches the catalog size).
Recall against exact search is measured by ``recall_at_k`` and reported by ``bench/training.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

import numpy as np

from playnext.models.base import CandidateModel
from playnext.models.factorization import VectorModel
from playnext.models.interactions import Candidates, Interactions


class ItemIndex:
    """Maximum-inner-product search over item vectors with voyager (HNSW); ids are item indexes.

    Items are inserted longest vector first. voyager reduces inner product to a metric search by padding every
    vector up to the largest norm it has seen, so a graph built in index order (where long vectors arrive late)
    is built on a geometry that keeps changing: on ALS item vectors of the simulator (50k items) it found 0.27 of
    the true top 10 at ef 100; inserted by descending norm, 0.999 (``bench/training.py`` measures both). Items
    without a vector (all zeros: nobody met them) are left out; they score 0 for everyone.
    """

    def __init__(self, m: int = 16, ef_construction: int = 200, ef: int = 200, by_norm: bool = True) -> None:
        self.m, self.ef_construction, self.ef, self.by_norm = m, ef_construction, ef, by_norm

    def build(self, vectors: np.ndarray) -> Self:
        from voyager import Index, Space

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1)
        keep = np.flatnonzero(norms > 0)
        if self.by_norm:
            keep = keep[np.argsort(-norms[keep], kind="stable")]
        self.index_ = Index(
            Space.InnerProduct,
            num_dimensions=vectors.shape[1],
            M=self.m,
            ef_construction=self.ef_construction,
            max_elements=max(len(keep), 1),
        )
        if len(keep):
            self.index_.add_items(vectors[keep], ids=keep.astype(np.uint64), num_threads=1)
        self.size_ = len(keep)
        return self

    def query(self, vectors: np.ndarray, k: int, ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(items, scores) of the ``k`` largest inner products; -1 / -inf past the indexed items. ``ef``: the
        search breadth for this query (default the index's), traded against its time."""
        k_eff = min(k, self.size_)
        items = np.full((len(vectors), k), -1, np.int64)
        scores = np.full((len(vectors), k), -np.inf, np.float32)
        if k_eff == 0 or len(vectors) == 0:
            return items, scores
        ids, dist = self.index_.query(
            np.ascontiguousarray(vectors, np.float32), k=k_eff, num_threads=1, query_ef=max(ef or self.ef, k_eff)
        )
        items[:, :k_eff] = ids.reshape(len(vectors), k_eff).astype(np.int64)
        scores[:, :k_eff] = 1.0 - dist.reshape(len(vectors), k_eff)  # voyager's inner-product distance: 1 - dot
        return items, scores

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.index_.save(str(path / "items.voy"))
        (path / "params.json").write_text(
            json.dumps({"m": self.m, "ef_construction": self.ef_construction, "ef": self.ef, "by_norm": self.by_norm})
        )

    @classmethod
    def load(cls, path: Path) -> ItemIndex:
        from voyager import Index

        out = cls(**json.loads((path / "params.json").read_text()))
        out.index_ = Index.load(str(path / "items.voy"))
        out.size_ = len(out.index_)
        return out


class AnnIndexed(CandidateModel):
    name = "ann"

    def __init__(self, model: VectorModel, m: int = 16, ef_construction: int = 200, ef: int = 200) -> None:
        super().__init__(m=m, ef_construction=ef_construction, ef=ef)
        self.model = model

    def _fit(self, data: Interactions) -> None:
        if not hasattr(self.model, "n_items_"):
            self.model.fit(data)
        self.build()

    def build(self) -> Self:
        p = self.params
        self.n_items_ = self.model.n_items_
        self.history_ = self.model.history_
        self.index_ = ItemIndex(p["m"], p["ef_construction"], p["ef"]).build(self.model.item_vectors())
        return self

    def use_history(self, history) -> None:  # type: ignore[no-untyped-def]
        super().use_history(history)
        self.model.use_history(history)

    def recommend(self, users: np.ndarray, n: int, exclude_seen: bool = True) -> Candidates:
        """Search ``n`` plus most listeners' history (the 95th percentile in the batch, not the maximum: one
        heavy listener must not deepen everyone's search), drop seen items, and answer the few listeners left
        short by exact search."""
        self._check()
        users = np.asarray(users, dtype=np.int64)
        out = Candidates.empty(len(users), n)
        if not len(users):
            return out
        seen = self.seen(users) if exclude_seen else None
        counts = np.diff(seen.indptr) if seen is not None else np.zeros(len(users), np.int64)
        extra = int(np.percentile(counts, 95))
        if n + extra > self.n_items_ // 2:
            return self.model.recommend(users, n, exclude_seen)  # the index would return most of the catalog
        items, scores = self.index_.query(self.model.user_vectors(users), n + extra)
        if seen is not None:
            rows = np.repeat(np.arange(len(users)), counts)
            flat = np.zeros((len(users), self.n_items_ + 1), dtype=bool) if len(users) * self.n_items_ < 5e7 else None
            if flat is not None:  # one boolean mask per batch: vectorized removal of seen items
                flat[rows, seen.indices] = True
                drop = flat[np.arange(len(users))[:, None], np.where(items >= 0, items, self.n_items_)]
            else:
                drop = np.array(
                    [np.isin(items[r], seen.indices[seen.indptr[r] : seen.indptr[r + 1]]) for r in range(len(users))]
                )
            items = np.where(drop, -1, items)
        keep = items >= 0
        order = np.argsort(~keep, axis=1, kind="stable")[:, :n]  # kept items first, in score order
        out.items[:, : order.shape[1]] = np.take_along_axis(np.where(keep, items, -1), order, axis=1)
        out.scores[:, : order.shape[1]] = np.take_along_axis(np.where(keep, scores, -np.inf), order, axis=1)
        short = np.flatnonzero((out.items < 0).any(axis=1) & (keep.sum(axis=1) < n) & (counts > extra))
        if len(short):
            exact = self.model.recommend(users[short], n, exclude_seen)
            out.items[short], out.scores[short] = exact.items, exact.scores
        return out

    def user_scores(self, users: np.ndarray) -> np.ndarray:
        return self.model.user_scores(users)

    def item_scores(self, items: np.ndarray) -> np.ndarray:
        return self.model.item_scores(items)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.model.score(users, items)

    def save(self, path: Path) -> None:
        self._check()
        path.mkdir(parents=True, exist_ok=True)
        (path / "params.json").write_text(json.dumps({"name": self.name, "params": self.params}, sort_keys=True))
        self.model.save(path / "model")
        self.index_.save(path / "index")

    @classmethod
    def load(cls, path: Path) -> Self:
        from playnext.models.generators import load_generator

        meta = json.loads((path / "params.json").read_text())
        model = load_generator(path / "model")
        assert isinstance(model, VectorModel)
        out = cls(model, **meta["params"])
        out.n_items_ = model.n_items_
        out.index_ = ItemIndex.load(path / "index")
        return out


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact top-k that the approximate search returned."""
    k = exact.shape[1]
    hits = sum(len(np.intersect1d(a[a >= 0], e[e >= 0])) for a, e in zip(approx, exact, strict=True))
    return hits / max(int((exact >= 0).sum()), 1) if k else 1.0
