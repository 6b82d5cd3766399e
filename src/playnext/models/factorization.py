"""Implicit-feedback matrix factorization: ``implicit``'s ALS on one machine, Spark ALS for data beyond it.

Both learn the same thing (Hu, Koren & Volinsky's weighted least squares on confidences 1 + alpha·affinity) and
keep the same state, listener and item factors, so a model trained on Spark is saved, loaded and served exactly as
one trained in process. Which trainer runs is chosen once, when the generator is built from settings.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from playnext.models.base import CandidateModel, normalize_rows
from playnext.models.interactions import Interactions


class VectorModel(CandidateModel):
    """Scores are dot products of listener and item vectors: what an ANN index can search."""

    user_factors_: np.ndarray
    item_factors_: np.ndarray

    def user_vectors(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        out = self.user_factors_[np.where(users >= 0, users, 0)].copy()
        out[users < 0] = 0.0
        return out

    def item_vectors(self) -> np.ndarray:
        return self.item_factors_

    def user_scores(self, users: np.ndarray) -> np.ndarray:
        return self.user_vectors(users) @ self.item_factors_.T

    def item_scores(self, items: np.ndarray) -> np.ndarray:
        unit = normalize_rows(self.item_factors_)
        return unit[np.asarray(items)] @ unit.T

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Dot products of pairs, 65,536 at a time: gathering both sides for a million pairs of 384-d vectors
        would take gigabytes."""
        self._check()
        users, items = np.asarray(users), np.asarray(items)
        out = np.empty(len(users), dtype=np.float32)
        for lo in range(0, len(users), 65_536):
            u, i = users[lo : lo + 65_536], items[lo : lo + 65_536]
            out[lo : lo + len(u)] = np.einsum("ij,ij->i", self.user_vectors(u), self.item_factors_[i])
        return out

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors_": self.user_factors_, "item_factors_": self.item_factors_}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.user_factors_, self.item_factors_ = state["user_factors_"], state["item_factors_"]


def confidence(affinity: np.ndarray, transform: str) -> np.ndarray:
    values = affinity.astype(np.float32)
    return np.log1p(values) if transform == "log" else values


class ALS(VectorModel):
    """``implicit.cpu.als.AlternatingLeastSquares``; confidences are the affinity (or its log, ``transform``)."""

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
        transform: str = "linear",
        seed: int = 0,
    ) -> None:
        super().__init__(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            transform=transform,
            seed=seed,
        )

    def _fit(self, data: Interactions) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        p = self.params
        matrix = data.matrix.copy()
        matrix.data = confidence(matrix.data, p["transform"])
        # implicit runs its own threads; BLAS threads nested inside them thrash (implicit warns 10× slower).
        with threadpool_limits(1, "blas"):
            self._als(AlternatingLeastSquares, matrix)

    def _als(self, cls: type, matrix) -> None:  # type: ignore[no-untyped-def]
        p = self.params
        model = cls(
            factors=p["factors"],
            regularization=p["regularization"],
            alpha=p["alpha"],
            iterations=p["iterations"],
            random_state=p["seed"],
            calculate_training_loss=False,
        )
        model.fit(matrix, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)


# Each ALS iteration lengthens the lineage of RDDs that every task deserializes recursively. Past about 15
# iterations (here; 10 or 15 on a slower machine, as in one CI run) a task overflows Java's default thread stack,
# and Spark exits the whole JVM on that fatal error. A checkpoint every few iterations cuts the lineage, so any
# number of iterations trains.
CHECKPOINT_EVERY = 5


class SparkALS(ALS):
    """The same model fitted by ``pyspark.ml.recommendation.ALS`` (``implicitPrefs``) on a Spark master."""

    def __init__(self, master: str = "local[*]", **params: object) -> None:
        super().__init__(**params)  # type: ignore[arg-type]
        self.master = master  # where it trains, not what it learns: kept out of params

    def _fit(self, data: Interactions) -> None:
        from pyspark.ml.recommendation import ALS as SparkALSEstimator

        from playnext.pipelines.engine import SparkEngine

        p = self.params
        coo = data.matrix.tocoo()
        engine = SparkEngine(self.master, app_name="playnext-als")
        with tempfile.TemporaryDirectory(prefix="playnext-als-") as tmp:
            # The triplets reach Spark as Parquet, not as Python rows through the driver: a cluster reads the
            # file in parallel (on a cluster, ``tmp`` must be on storage the executors share, as must the
            # checkpoints written under it).
            path = Path(tmp) / "ratings.parquet"
            ratings = pa.table(
                {
                    "user": coo.row.astype(np.int32),
                    "item": coo.col.astype(np.int32),
                    "rating": confidence(coo.data, p["transform"]),
                }
            )
            pq.write_table(ratings, path)
            try:
                engine.session.sparkContext.setCheckpointDir(str(Path(tmp) / "checkpoints"))
                frame = engine.session.read.parquet(str(path))
                estimator = SparkALSEstimator(
                    rank=p["factors"],
                    maxIter=p["iterations"],
                    regParam=p["regularization"],
                    alpha=p["alpha"],
                    implicitPrefs=True,
                    userCol="user",
                    itemCol="item",
                    ratingCol="rating",
                    seed=p["seed"],
                    nonnegative=False,
                    coldStartStrategy="drop",
                    checkpointInterval=CHECKPOINT_EVERY,
                )
                fitted = estimator.fit(frame)
                self.user_factors_ = _factors(fitted.userFactors.collect(), data.n_users, p["factors"])
                self.item_factors_ = _factors(fitted.itemFactors.collect(), data.n_items, p["factors"])
            finally:
                engine.close()


def _factors(rows: list, n: int, k: int) -> np.ndarray:
    """Spark returns factors only for ids it saw; the rest (items without history) stay zero."""
    out = np.zeros((n, k), dtype=np.float32)
    if rows:
        ids = np.array([r["id"] for r in rows], dtype=np.int64)
        out[ids] = np.array([r["features"] for r in rows], dtype=np.float32)
    return out
