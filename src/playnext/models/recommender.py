"""Generators + ranker as one ``CandidateModel``: what a model version holds and what surfaces ask.

``recommend`` pools each generator's top ``candidates_per_generator`` (seen items excluded), computes the pairs'
features, orders the pool by the ranker, and tops up from popularity when a pool is short. Without a ranker the
pool is ordered by the standardized blend of generator scores. Listeners without history get the popularity
generator's cold-start ranking from the same path, so a new listener is never an error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

import numpy as np

from playnext.models.base import CandidateModel
from playnext.models.features import ItemSide, candidate_features, feature_names
from playnext.models.interactions import Candidates, Interactions, top_n_of_pairs
from playnext.models.popularity import Popularity
from playnext.models.ranker import LambdaRanker


class Recommender(CandidateModel):
    name = "recommender"

    def __init__(
        self,
        generators: dict[str, CandidateModel],
        ranker: LambdaRanker | None = None,
        candidates_per_generator: int = 100,
        similar_by: str | None = None,
    ) -> None:
        super().__init__(candidates_per_generator=candidates_per_generator, similar_by=similar_by)
        self.generators = generators
        self.ranker = ranker

    # -- fitting happens outside (see ``playnext.models.training``): members and ranker arrive fitted ----------

    def _fit(self, data: Interactions) -> None:
        for model in self.generators.values():
            if not hasattr(model, "n_items_"):
                model.fit(data)
        self.side_ = ItemSide.of(data)

    def attach(self, data: Interactions) -> Self:
        """Adopt already fitted members trained on ``data``."""
        self.n_items_ = data.n_items
        self.history_ = data.matrix.tocsr()
        self.side_ = ItemSide.of(data)
        return self

    def use_history(self, history) -> None:  # type: ignore[no-untyped-def]
        super().use_history(history)
        for model in self.generators.values():
            model.use_history(history)

    @property
    def fallback(self) -> Popularity | None:
        for model in self.generators.values():
            if isinstance(model, Popularity) and not model.params["trending"]:
                return model
        return None

    # -- candidates, features, order -----------------------------------------------------------------------------

    def candidate_lists(self, users: np.ndarray, exclude_seen: bool = True) -> dict[str, Candidates]:
        n = self.params["candidates_per_generator"]
        return {name: model.recommend(users, n, exclude_seen) for name, model in self.generators.items()}

    def pool(self, lists: dict[str, Candidates]) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (row, item) pairs proposed by any generator, grouped by row (as one int64 key each: NumPy's
        row-wise unique over pairs sorts structured views, many times slower)."""
        keys = [np.nonzero(got.items >= 0)[0] * self.n_items_ + got.items[got.items >= 0] for got in lists.values()]
        distinct = np.unique(np.concatenate(keys))
        return distinct // self.n_items_, distinct % self.n_items_

    def features(
        self, users: np.ndarray, lists: dict[str, Candidates], rows: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        return candidate_features(self.generators, lists, self.side_, self.history_, users, rows, items)

    def feature_names(self) -> list[str]:
        return feature_names(list(self.generators))

    def _pair_scores(
        self, users: np.ndarray, lists: dict[str, Candidates], rows: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        if self.ranker is not None:
            return self.ranker.score(self.features(users, lists, rows, items))
        # Without a ranker: each generator's scores as z-scores within each listener's pool, summed.
        return np.sum(
            [_standardize_within(rows, m.score(users[rows], items)) for m in self.generators.values()], axis=0
        )

    def recommend(self, users: np.ndarray, n: int, exclude_seen: bool = True) -> Candidates:
        self._check()
        users = np.asarray(users, dtype=np.int64)
        out = Candidates.empty(len(users), n)
        cold = users < 0
        if cold.any() and self.fallback is not None:
            got = self.fallback.recommend(users[cold], n, exclude_seen)
            out.items[cold], out.scores[cold] = got.items, got.scores
        warm = np.flatnonzero(~cold) if self.fallback is not None else np.arange(len(users))
        block = 512
        for lo in range(0, len(warm), block):
            at = warm[lo : lo + block]
            chunk = users[at]
            lists = self.candidate_lists(chunk, exclude_seen)
            rows, items = self.pool(lists)
            scores = self._pair_scores(chunk, lists, rows, items)
            got = top_n_of_pairs(rows, items, scores.astype(np.float32), len(chunk), n)
            self._top_up(chunk, got, exclude_seen)
            out.items[at], out.scores[at] = got.items, got.scores
        return out

    def _top_up(self, users: np.ndarray, got: Candidates, exclude_seen: bool) -> None:
        short = np.flatnonzero((got.items < 0).any(axis=1))
        if not len(short) or self.fallback is None:
            return
        extra = self.fallback.recommend(users[short], got.items.shape[1] * 2, exclude_seen)
        for row, more in zip(short.tolist(), extra.items, strict=True):
            have = set(got.items[row][got.items[row] >= 0].tolist())
            fill = [i for i in more.tolist() if i >= 0 and i not in have]
            free = np.flatnonzero(got.items[row] < 0)
            take = min(len(free), len(fill))
            got.items[row, free[:take]] = fill[:take]
            got.scores[row, free[:take]] = float(got.scores[row][got.items[row] >= 0].min(initial=0.0)) - 1.0

    def user_scores(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        lists = self.candidate_lists(users, exclude_seen=False)
        rows, items = self.pool(lists)
        dense = np.full((len(users), self.n_items_), -np.inf, dtype=np.float32)
        dense[rows, items] = self._pair_scores(users, lists, rows, items)
        return dense

    def item_scores(self, items: np.ndarray) -> np.ndarray:
        name = self.params["similar_by"] or next(iter(self.generators))
        return self.generators[name].item_scores(items)

    # -- persistence -------------------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        self._check()
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "name": self.name,
            "params": self.params,
            "generators": list(self.generators),
            "ranker": self.ranker is not None,
        }
        (path / "params.json").write_text(json.dumps(meta, sort_keys=True))
        np.savez(path / "state.npz", n_items_=np.array(self.n_items_), **self.side_.arrays())
        for name, model in self.generators.items():
            model.save(path / "generators" / name)
        if self.ranker is not None:
            self.ranker.save(path / "ranker")

    @classmethod
    def load(cls, path: Path) -> Self:
        from playnext.models.generators import load_generator

        meta = json.loads((path / "params.json").read_text())
        if meta.get("name") != cls.name:
            raise ValueError(f"{path} does not hold a recommender")
        generators = {name: load_generator(path / "generators" / name) for name in meta["generators"]}
        ranker = LambdaRanker.load(path / "ranker") if meta["ranker"] else None
        model = cls(generators, ranker, **meta["params"])
        with np.load(path / "state.npz", allow_pickle=False) as npz:
            state = {k: npz[k] for k in npz.files}
        model.n_items_ = int(state.pop("n_items_"))
        model.side_ = ItemSide(**state)
        return model


def _standardize_within(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """z-scores of ``values`` within each group of equal ``rows``; non-finite values count as the group's minimum."""
    finite = np.isfinite(values)
    v = np.where(finite, values, 0.0).astype(np.float64)
    n = np.maximum(np.bincount(rows, weights=finite), 1)
    mean = np.bincount(rows, weights=v * finite) / n
    var = np.bincount(rows, weights=(v - mean[rows]) ** 2 * finite) / n
    z = (v - mean[rows]) / np.where(var > 1e-18, np.sqrt(var), 1.0)[rows]
    low = np.full(len(n), np.inf)
    np.minimum.at(low, rows[finite], z[finite])
    low[~np.isfinite(low)] = 0.0
    return np.where(finite, z, low[rows]).astype(np.float32)
