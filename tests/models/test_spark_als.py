"""ALS on Spark learns the same kind of model as ``implicit`` and serves through the same class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from playnext.models.factorization import ALS, SparkALS
from playnext.models.generators import build_generator, load_generator
from tests.models.small import two_tastes

pytest.importorskip("pyspark")


@pytest.mark.slow
def test_spark_als_recovers_the_two_tastes_and_loads_as_als(tmp_path: Path) -> None:
    """30 iterations: without checkpoints their lineage overflows a task's stack and takes the JVM down."""
    data = two_tastes()
    model = build_generator("als", {"factors": 8, "iterations": 30}, engine="spark", spark_master="local[2]")
    assert isinstance(model, SparkALS)
    model.fit(data)
    got = model.recommend(np.arange(data.n_users), 3).items
    half_u, half_i = data.n_users // 2, data.n_items // 2
    own = np.where(np.arange(data.n_users)[:, None] < half_u, got < half_i, got >= half_i)
    assert own.mean() > 0.9
    model.save(tmp_path / "als")
    loaded = load_generator(tmp_path / "als")
    assert type(loaded) is ALS
    loaded.use_history(data.matrix)
    np.testing.assert_array_equal(loaded.recommend(np.arange(5), 3).items, got[:5])
