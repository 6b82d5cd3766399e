"""A small published model version: two taste groups, a sequence model, co-occurrence and popularity."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from playnext.config import Settings
from playnext.models.generators import build_generator
from playnext.models.recommender import Recommender
from playnext.models.registry import ModelVersion, Registry
from tests.models.small import two_tastes


@pytest.fixture(scope="package")
def version(tmp_path_factory: pytest.TempPathFactory) -> ModelVersion:
    data = two_tastes(n_users=40, n_items=60)
    played = data.matrix.tolil()
    played[0, 1] = 1.0  # listener 0 skipped rock track 1: played, no affinity
    data.played = played.tocsr()
    generators = {
        "als": build_generator("als", {"factors": 8, "iterations": 10}),
        "cooccurrence": build_generator("cooccurrence"),
        "popularity": build_generator("popularity"),
        "sasrec": build_generator("sasrec", {"dim": 16, "max_len": 10, "epochs": 5, "min_steps": 50,
                                             "negatives": 16}),
    }  # fmt: skip
    rec = Recommender(generators, candidates_per_generator=40).fit(data)
    registry = Registry(Settings(data_dir=tmp_path_factory.mktemp("surfaces") / "data"))
    return registry.load(registry.publish(rec, data, {}))


def rock(version: ModelVersion, item_ids: list[str]) -> np.ndarray:
    half = version.data.n_items // 2
    return version.data.item_index(item_ids) < half


__all__ = ["rock", "sp"]
