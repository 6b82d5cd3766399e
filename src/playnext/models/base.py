"""The one contract every candidate generator keeps, in the shape of ``implicit`` and scikit-learn.

The constructor takes hyper-parameters only and stores them unchanged (``get_params`` rebuilds the model from
configuration); learned state ends in ``_`` and exists only after ``fit``. Every model answers the same calls, in
batches of integer indexes, so a surface or the ranker asks for candidates without knowing where they come from:

- ``recommend(users, n, exclude_seen)``: the best ``n`` items per listener (index -1 is a listener without
  history, who gets the model's cold-start answer);
- ``similar_items(items, n)``: the nearest ``n`` other items;
- ``score(users, items)``: the model's score of given pairs, which the ranker uses as a feature;
- ``save(path)`` / ``load(path)``: parameters as JSON, learned arrays in one ``.npz``.

A model implements ``_fit``, ``user_scores`` (a dense block of scores over every item) and ``item_scores``;
the base class derives the rest. Models whose vectors an ANN index can search also expose ``user_vectors`` and
``item_vectors`` (see ``playnext.index``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from playnext.models.interactions import Candidates, Interactions, top_n

# Dense score blocks are built this many rows at a time: bounded memory whatever the catalog size.
BLOCK_ROWS = 256


class NotFitted(RuntimeError):
    pass


class CandidateModel(ABC):
    name: ClassVar[str]

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)

    def get_params(self) -> dict[str, Any]:
        return dict(self.params)

    def fit(self, data: Interactions) -> Self:
        self.n_items_ = data.n_items
        self.history_ = data.matrix.tocsr()
        self._fit(data)
        return self

    @abstractmethod
    def _fit(self, data: Interactions) -> None: ...

    @abstractmethod
    def user_scores(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) scores; a row of index -1 is a listener without history."""

    @abstractmethod
    def item_scores(self, items: np.ndarray) -> np.ndarray:
        """(len(items), n_items) similarity of each item to every item."""

    # -- derived -----------------------------------------------------------------------------------------------

    def _check(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFitted(f"{type(self).__name__} is not fitted: call fit() or load()")

    def use_history(self, history: sp.csr_matrix) -> None:
        """Attach what listeners already met (after ``load``: versions store it once, not per model)."""
        self.history_ = history

    def seen(self, users: np.ndarray) -> sp.csr_matrix:
        rows = np.where(users >= 0, users, 0)
        block = self.history_[rows]
        if (users < 0).any():
            block = sp.diags((users >= 0).astype(np.float32)) @ block
        return block.tocsr()

    def recommend(self, users: np.ndarray, n: int, exclude_seen: bool = True) -> Candidates:
        def scores(chunk: np.ndarray) -> np.ndarray:
            block = np.asarray(self.user_scores(chunk), dtype=np.float32)
            if exclude_seen:
                _mask(block, self.seen(chunk))
            return block

        return self._top_in_blocks(users, n, scores)

    def similar_items(self, items: np.ndarray, n: int) -> Candidates:
        def scores(chunk: np.ndarray) -> np.ndarray:
            block = np.asarray(self.item_scores(chunk), dtype=np.float32)
            block[np.arange(len(chunk)), chunk] = -np.inf  # an item is not its own neighbour
            return block

        return self._top_in_blocks(items, n, scores)

    def _top_in_blocks(self, rows: np.ndarray, n: int, scores: Callable[[np.ndarray], np.ndarray]) -> Candidates:
        """Top ``n`` of dense score blocks, ``BLOCK_ROWS`` query rows at a time: bounded memory."""
        self._check()
        rows = np.asarray(rows, dtype=np.int64)
        out = Candidates.empty(len(rows), n)
        for lo in range(0, len(rows), BLOCK_ROWS):
            got = top_n(scores(rows[lo : lo + BLOCK_ROWS]), n)
            out.items[lo : lo + len(got.items)], out.scores[lo : lo + len(got.items)] = got.items, got.scores
        return out

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of (user, item) pairs, computed per distinct listener block."""
        self._check()
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        out = np.zeros(len(users), dtype=np.float32)
        distinct, inverse = np.unique(users, return_inverse=True)
        for lo in range(0, len(distinct), BLOCK_ROWS):
            chunk = distinct[lo : lo + BLOCK_ROWS]
            block = np.asarray(self.user_scores(chunk), dtype=np.float32)
            sel = (inverse >= lo) & (inverse < lo + len(chunk))
            out[sel] = block[inverse[sel] - lo, items[sel]]
        return out

    # -- persistence -------------------------------------------------------------------------------------------

    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (``history_`` is stored once per version, not here)."""
        return {}

    def _restore(self, state: dict[str, np.ndarray]) -> None:  # noqa: B027 - stateless models restore nothing
        pass

    def save(self, path: Path) -> None:
        self._check()
        path.mkdir(parents=True, exist_ok=True)
        (path / "params.json").write_text(json.dumps({"name": self.name, "params": self.params}, sort_keys=True))
        np.savez(path / "state.npz", n_items_=np.array(self.n_items_), **self._state())

    @classmethod
    def load(cls, path: Path) -> Self:
        meta = json.loads((path / "params.json").read_text())
        if meta.get("name") != cls.name:
            raise ValueError(f"{path} holds a {meta.get('name')!r} model, not {cls.name!r}")
        model = cls(**meta["params"])
        with np.load(path / "state.npz", allow_pickle=False) as npz:
            state = {k: npz[k] for k in npz.files}
        model.n_items_ = int(state.pop("n_items_"))
        model._restore(state)
        return model


def _mask(scores: np.ndarray, seen: sp.csr_matrix) -> None:
    rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
    scores[rows, seen.indices] = -np.inf


def normalize_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
