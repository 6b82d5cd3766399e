"""Item-to-item models on the affinity matrix: EASE and RP3β. Strong, simple baselines in linear algebra.

EASE (Steck, 2019) solves a ridge regression of every item on all others in closed form: one dense inverse of the
item Gram matrix (cubic in items: 2 s at 5,000 items on two cores), so it is limited to the ``max_items`` most
popular items (the rest score -inf). RP3β
(Paudel et al., 2017) is a three-step random walk user → item → user → item with popular items down-weighted by
popularity^β; its item graph is built in blocks of rows and pruned to the ``top_k`` neighbours per item, so it
scales to large catalogs as sparse products.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from playnext.models.base import CandidateModel
from playnext.models.interactions import Interactions

_BLOCK = 512


def _input(data: Interactions, binary: bool) -> sp.csr_matrix:
    return data.binary() if binary else data.matrix.astype(np.float32)


def _spd_inverse(gram: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive-definite matrix by Cholesky (LAPACK potrf + potri): 3× faster than a
    general inverse at 5,000 items. G + λI is positive definite for λ > 0; a general inverse is the fallback."""
    from scipy.linalg import lapack

    chol, info = lapack.dpotrf(gram, lower=False, overwrite_a=False)
    if info == 0:
        upper, info = lapack.dpotri(chol, lower=False, overwrite_c=True)
        if info == 0:
            return np.triu(upper) + np.triu(upper, 1).T
    return np.linalg.inv(gram)


class ItemGraphModel(CandidateModel):
    """Scores are the listener's history times an item × item weight matrix ``weights_``."""

    weights_: sp.csr_matrix | np.ndarray

    def _history_input(self, users: np.ndarray) -> sp.csr_matrix:
        block = self.seen(users)
        if self.params.get("binary", True):
            block.data = np.ones_like(block.data)
        return block

    def user_scores(self, users: np.ndarray) -> np.ndarray:
        scores = self._history_input(users) @ self.weights_
        return np.asarray(scores.toarray() if sp.issparse(scores) else scores, dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        w = self.weights_
        return {"w_data": w.data, "w_indices": w.indices, "w_indptr": w.indptr}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        n = self.n_items_
        self.weights_ = sp.csr_matrix((state["w_data"], state["w_indices"], state["w_indptr"]), shape=(n, n))

    def item_scores(self, items: np.ndarray) -> np.ndarray:
        rows = self.weights_[np.asarray(items)]
        return np.asarray(rows.toarray() if sp.issparse(rows) else rows, dtype=np.float32)


class EASE(ItemGraphModel):
    name = "ease"

    def __init__(self, l2: float = 300.0, max_items: int = 5_000, binary: bool = True) -> None:
        super().__init__(l2=l2, max_items=max_items, binary=binary)

    def _fit(self, data: Interactions) -> None:
        x = _input(data, self.params["binary"])
        counts = np.asarray((x > 0).sum(axis=0)).ravel()
        keep = np.sort(np.argsort(-counts, kind="stable")[: self.params["max_items"]])
        keep = keep[counts[keep] > 0]
        xs = x[:, keep]
        gram = (xs.T @ xs).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.params["l2"]
        inverse = _spd_inverse(gram)
        b = -inverse / np.diag(inverse)
        b[np.diag_indices_from(b)] = 0.0
        self.items_ = keep
        self.b_ = b.astype(np.float32)

    def user_scores(self, users: np.ndarray) -> np.ndarray:
        hist = self._history_input(users)[:, self.items_]
        out = np.full((len(users), self.n_items_), -np.inf, dtype=np.float32)
        out[:, self.items_] = hist @ self.b_
        return out

    def item_scores(self, items: np.ndarray) -> np.ndarray:
        out = np.full((len(items), self.n_items_), -np.inf, dtype=np.float32)
        pos = np.searchsorted(self.items_, items)
        pos = np.minimum(pos, len(self.items_) - 1)
        known = self.items_[pos] == items
        out[np.ix_(np.flatnonzero(known), self.items_)] = self.b_[pos[known]]
        return out

    def _state(self) -> dict[str, np.ndarray]:
        return {"items_": self.items_, "b_": self.b_}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.items_, self.b_ = state["items_"], state["b_"]


class RP3Beta(ItemGraphModel):
    name = "rp3beta"

    def __init__(self, alpha: float = 1.0, beta: float = 0.6, top_k: int = 200, binary: bool = True) -> None:
        super().__init__(alpha=alpha, beta=beta, top_k=top_k, binary=binary)

    def _fit(self, data: Interactions) -> None:
        p = self.params
        x = _input(data, p["binary"])
        x.data = np.power(x.data.clip(min=0), p["alpha"], dtype=np.float32)
        p_ui = sp.diags(1.0 / np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1e-12)) @ x
        xt = x.T.tocsr()
        p_iu = (sp.diags(1.0 / np.maximum(np.asarray(xt.sum(axis=1)).ravel(), 1e-12)) @ xt).tocsr()
        popularity = np.asarray((x > 0).sum(axis=0)).ravel().astype(np.float64)
        penalty = 1.0 / np.power(np.maximum(popularity, 1.0), p["beta"])
        p_ui = p_ui.tocsc()
        rows, cols, vals = [], [], []
        k = min(p["top_k"], data.n_items - 1) if data.n_items > 1 else 0
        for lo in range(0, data.n_items, _BLOCK):
            hi = min(lo + _BLOCK, data.n_items)
            block = (p_iu[lo:hi] @ p_ui).toarray() * penalty
            block[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
            if k <= 0:
                continue
            top = np.argpartition(-block, k - 1, axis=1)[:, :k]
            val = np.take_along_axis(block, top, axis=1)
            keep = val > 0
            rows.append(np.repeat(np.arange(lo, hi), k)[keep.ravel()])
            cols.append(top.ravel()[keep.ravel()])
            vals.append(val.ravel()[keep.ravel()])
        cat = lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt)  # noqa: E731
        self.weights_ = sp.csr_matrix(
            (cat(vals, np.float32), (cat(rows, np.int64), cat(cols, np.int64))), shape=(data.n_items, data.n_items)
        )


class Cooccurrence(ItemGraphModel):
    """Session and playlist co-occurrence from the ``item_cooccurrence`` feature definition (PMI of pairs)."""

    name = "cooccurrence"

    def __init__(self, binary: bool = True) -> None:
        super().__init__(binary=binary)

    def _fit(self, data: Interactions) -> None:
        if data.cooccurrence is None:
            raise ValueError("the cooccurrence model needs item_cooccurrence; load the data with_cooccurrence=True")
        self.weights_ = data.cooccurrence.tocsr()
