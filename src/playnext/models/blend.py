"""A weighted blend of generators, itself a generator: scores are standardized per listener and summed.

Raw scores of different models live on different scales (dot products, PMI, log counts), so each model's row is
turned into z-scores over its finite entries before weighting; -inf (an item a model cannot score) counts as the
row's minimum.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

import numpy as np

from playnext.models.base import CandidateModel
from playnext.models.interactions import Interactions


def standardize(scores: np.ndarray) -> np.ndarray:
    finite = np.isfinite(scores)
    filled = np.where(finite, scores, np.nan)
    mean = np.nanmean(filled, axis=1, keepdims=True)
    std = np.nanstd(filled, axis=1, keepdims=True)
    z = (filled - np.nan_to_num(mean)) / np.where(std > 1e-9, std, 1.0)
    low = np.nanmin(z, axis=1, keepdims=True)
    return np.where(finite, z, np.nan_to_num(low, nan=0.0)).astype(np.float32)


class Blend(CandidateModel):
    name = "blend"

    def __init__(self, members: dict[str, CandidateModel] | None = None, weights: dict[str, float] | None = None):
        super().__init__(weights=dict(weights or {}))
        self.members = dict(members or {})

    def _fit(self, data: Interactions) -> None:
        for model in self.members.values():
            if not hasattr(model, "n_items_"):
                model.fit(data)

    def use_history(self, history) -> None:  # type: ignore[no-untyped-def]
        super().use_history(history)
        for model in self.members.values():
            model.use_history(history)

    def _combine(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        weights = self.params["weights"]
        out = None
        for name, block in blocks.items():
            part = weights.get(name, 1.0) * standardize(block)
            out = part if out is None else out + part
        assert out is not None, "a blend needs at least one member"
        return out

    def user_scores(self, users: np.ndarray) -> np.ndarray:
        return self._combine(
            {n: m.user_scores(users) for n, m in self.members.items() if self.params["weights"].get(n, 1.0)}
        )

    def item_scores(self, items: np.ndarray) -> np.ndarray:
        return self._combine(
            {n: m.item_scores(items) for n, m in self.members.items() if self.params["weights"].get(n, 1.0)}
        )

    def save(self, path: Path) -> None:
        self._check()
        path.mkdir(parents=True, exist_ok=True)
        (path / "params.json").write_text(
            json.dumps({"name": self.name, "params": self.params, "members": list(self.members)}, sort_keys=True)
        )
        np.savez(path / "state.npz", n_items_=np.array(self.n_items_))
        for name, model in self.members.items():
            model.save(path / "members" / name)

    @classmethod
    def load(cls, path: Path) -> Self:
        from playnext.models.generators import load_generator

        meta = json.loads((path / "params.json").read_text())
        members = {name: load_generator(path / "members" / name) for name in meta["members"]}
        model = cls(members=members, **meta["params"])
        model.n_items_ = next(iter(members.values())).n_items_
        return model
