"""One training run: fit the configured generators, label candidates with a reward, fit the ranker.

The ranker must learn how generator scores relate to what listeners do *next*, so it cannot be trained on scores
of generators that already saw the answer. The run therefore splits the training period at its last
``ranker_label_share`` of events: generators fitted on the part before propose candidates for the part after,
whose outcomes (logged impressions when there are enough, otherwise interactions) give reward labels. The
generators are then refitted on the whole period and served with that ranker.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from playnext.config import Settings
from playnext.models.base import CandidateModel
from playnext.models.content import ContentSimilarity, EmbeddingCache
from playnext.models.data import (
    events_quantile,
    item_index_of,
    load_impression_outcomes,
    load_interactions,
    load_reactions,
)
from playnext.models.generators import build_generator, with_index
from playnext.models.interactions import Interactions
from playnext.models.ranker import LambdaRanker
from playnext.models.recommender import Recommender
from playnext.pipelines.engine import DuckDBEngine
from playnext.pipelines.inputs import load_inputs
from playnext.rewards.definitions import Reward, register_reward

# Fewer labelled impressions than this and the ranker learns from interactions instead.
MIN_IMPRESSIONS = 1000

Progress = Callable[[str], None]


@dataclass
class TrainingRun:
    recommender: Recommender
    data: Interactions
    cutoff: dt.datetime | None
    reward: Reward | None
    timings: dict[str, float] = field(default_factory=dict)
    ranker_info: dict[str, Any] = field(default_factory=dict)


def fit_generators(
    settings: Settings,
    data: Interactions,
    names: list[str],
    on_step: Progress | None = None,
    timings: dict[str, float] | None = None,
    index: bool = True,
) -> dict[str, CandidateModel]:
    """``index=False`` for generators that only label the ranker's data: batch search over a few thousand
    listeners is cheaper exact than through an index built for them alone."""
    m = settings.models
    out: dict[str, CandidateModel] = {}
    for name in names:
        if on_step:
            on_step(f"fitting {name}")
        t0 = time.perf_counter()
        model = build_generator(name, m.params.get(name), engine=m.engine, spark_master=m.spark_master)
        if isinstance(model, ContentSimilarity):
            model.use_cache(EmbeddingCache(settings.models_dir / "embedding-cache.npz"))
        model.fit(data)
        out[name] = with_index(model, data.n_items, m.ann_min_items, m.ann_ef) if index else model
        if timings is not None:
            timings[f"fit_{name}"] = timings.get(f"fit_{name}", 0.0) + time.perf_counter() - t0
    return out


def _labelled_sets(
    settings: Settings, reward: Reward, start: dt.datetime, end: dt.datetime
) -> list[tuple[str, pa.Table, np.ndarray]]:
    """(source, table with user_id/item_id/item_type and a ``group`` column, relevance grades) per source:
    what listeners did next with any item (always), and logged impressions with their outcomes (when enough)."""
    reactions = load_reactions(settings, start, end)
    groups = pc.dictionary_encode(reactions["user_id"]).combine_chunks().indices
    sets = [
        (
            "interactions",
            reactions.select(["user_id", "item_id", "item_type"]).append_column("group", groups),
            reward.relevance(reactions),
        )
    ]
    impressions = load_impression_outcomes(settings, start, end)
    grades = reward.relevance(impressions)
    if impressions.num_rows >= MIN_IMPRESSIONS and grades.max(initial=0) > 0:
        groups = pc.dictionary_encode(impressions["request_id"]).combine_chunks().indices
        table = impressions.select(["user_id", "item_id", "item_type", "position"]).append_column("group", groups)
        sets.append(("impressions", table, grades))
    return sets


def _grades_of_pairs(
    users: np.ndarray, event_users: np.ndarray, event_items: np.ndarray, event_grades: np.ndarray,
    rows: np.ndarray, items: np.ndarray, n_items: int,
) -> np.ndarray:  # fmt: skip
    """The grade of each candidate (``users[rows]``, ``items``): the best grade among that listener's events on that
    item, 0 without one. A sorted-key join in NumPy: a dict of pairs cost minutes and gigabytes at 100k listeners."""
    at = np.minimum(np.searchsorted(users, event_users), max(len(users) - 1, 0))
    known = (users[at] == event_users) if len(users) else np.zeros(len(event_users), bool)
    keys = at[known].astype(np.int64) * n_items + event_items[known]
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], event_grades[known][order]
    unique, start = np.unique(keys, return_index=True)
    best = np.maximum.reduceat(values, start) if len(start) else values[:0]
    wanted = rows.astype(np.int64) * n_items + items
    pos = np.minimum(np.searchsorted(unique, wanted), max(len(unique) - 1, 0))
    found = (unique[pos] == wanted) if len(unique) else np.zeros(len(wanted), bool)
    return np.where(found, best[pos] if len(best) else 0, 0).astype(np.int32)


def _ranker_training_set(
    rec: Recommender, data_a: Interactions, source: str, table: pa.Table, grades: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Features, grades and group sizes. For interactions, each listener's candidate pool is one query, graded
    by what they did next; for impressions, each logged list is one query over the items it showed."""
    users_all = np.asarray(table["user_id"].to_numpy(zero_copy_only=False), dtype=object)
    items_all = item_index_of(data_a, table)
    keep = items_all >= 0
    if source == "interactions":
        positive_users = np.unique(users_all[keep & (grades > 0)])
        users = data_a.user_index(positive_users)
        lists = rec.candidate_lists(users)
        rows, items = rec.pool(lists)
        labels = _grades_of_pairs(positive_users, users_all[keep], items_all[keep], grades[keep], rows, items,
                                  data_a.n_items)  # fmt: skip
        group_of = rows
        positions = None
    else:
        user_ids, user_rows = np.unique(users_all[keep], return_inverse=True)
        users = data_a.user_index(user_ids)
        lists = rec.candidate_lists(users)
        rows, items, labels = user_rows, items_all[keep], grades[keep]
        group_of = np.asarray(table["group"].to_numpy(zero_copy_only=False))[keep]
        positions = np.asarray(table["position"].to_numpy(zero_copy_only=False))[keep].astype(np.int32)
    order = np.argsort(group_of, kind="stable")
    rows, items, labels, group_of = rows[order], items[order], labels[order], group_of[order]
    if positions is not None:
        positions = positions[order]
    features = rec.features(users, lists, rows, items)
    # Queries without any positive teach lambdarank nothing.
    _, start, counts = np.unique(group_of, return_index=True, return_counts=True)
    has_positive = np.add.reduceat(labels > 0, start) > 0 if len(start) else np.zeros(0, bool)
    mask = np.repeat(has_positive, counts)
    return features[mask], labels[mask], counts[has_positive], positions[mask] if positions is not None else None


def train(settings: Settings, cutoff: dt.datetime | None = None, on_step: Progress | None = None) -> TrainingRun:
    m = settings.models
    timings: dict[str, float] = {}
    step = on_step or (lambda _msg: None)
    t0 = time.perf_counter()
    step("loading training data")
    data = load_interactions(settings, cutoff)
    timings["load"] = time.perf_counter() - t0
    if data.n_users == 0:
        raise ValueError("no listener has any positive interaction before the cutoff: nothing to learn from")
    ranker = None
    reward = None
    info: dict[str, Any] = {}
    early: dict[str, CandidateModel] = {}
    if m.ranker:
        reward = register_reward(settings, m.reward)
        end = cutoff or data.as_of + dt.timedelta(seconds=1)
        label_start = events_quantile(settings, 1.0 - m.ranker_label_share, before=end)
        step("loading ranker training data")
        data_a = load_interactions(settings, label_start)
        early = fit_generators(settings, data_a, m.generators, on_step=step, timings=timings, index=False)
        rec_a = Recommender(early, None, m.candidates_per_generator).attach(data_a)
        step("labelling candidates")
        parts = [
            (source, *_ranker_training_set(rec_a, data_a, source, table, grades))
            for source, table, grades in _labelled_sets(settings, reward, label_start, end)
        ]
        parts = [part for part in parts if len(part[3])]
        if not parts:
            raise ValueError("no listener did anything positive in the ranker's label window: nothing to learn from")
        features = np.concatenate([part[1] for part in parts])
        labels = np.concatenate([part[2] for part in parts])
        groups = np.concatenate([part[3] for part in parts])
        # Interactions were not shown at a position: they count as seen at the top.
        positions = np.concatenate(
            [part[4] if part[4] is not None else np.zeros(len(part[2]), np.int32) for part in parts]
        )
        source = "+".join(part[0] for part in parts)
        step(f"fitting the ranker on {len(groups):,} queries")
        t1 = time.perf_counter()
        ranker = LambdaRanker(**m.ranker_params).fit(features, labels, groups, rec_a.feature_names(), positions)
        timings["fit_ranker"] = time.perf_counter() - t1
        info = {
            "source": source,
            "queries": len(groups),
            "rows": len(labels),
            "positives": int((labels > 0).sum()),
            "label_start": label_start.isoformat(),
            "importance": ranker.importance(),
        }
    generators = fit_generators(settings, data, m.generators, on_step=step, timings=timings)
    rec = Recommender(generators, ranker, m.candidates_per_generator).attach(data)
    timings["total"] = time.perf_counter() - t0
    return TrainingRun(recommender=rec, data=data, cutoff=cutoff, reward=reward, timings=timings, ranker_info=info)


def train_version(
    settings: Settings,
    cutoff: dt.datetime | None = None,
    *,
    k: int = 20,
    promote: bool = False,
    on_step: Progress | None = None,
) -> tuple[str, TrainingRun, list[Any]]:
    """Train, evaluate on the holdout when there is one, publish an immutable version, optionally serve it."""
    from playnext.evaluation.offline import evaluate_stack, report_json
    from playnext.models.data import load_holdout
    from playnext.models.registry import Registry

    run = train(settings, cutoff, on_step)
    reports: list[Any] = []
    if cutoff is not None:
        (on_step or (lambda _m: None))("evaluating on the holdout")
        holdout = load_holdout(settings, run.data, cutoff)
        if len(holdout.users):
            reports = evaluate_stack(run.recommender, run.data, holdout, k)
    with DuckDBEngine() as engine:
        lake = load_inputs(engine, settings)
        snapshot = {
            "events_version": lake.events_version,
            "events_rows": lake.events_rows,
            "catalog_versions": lake.catalog_versions,
        }
    m = settings.models
    meta = {
        "generators": m.generators,
        "params": {"models": m.model_dump(), "pipelines": settings.pipelines.model_dump()},
        "reward": run.reward.ref if run.reward else None,
        "cutoff": cutoff.isoformat() if cutoff else None,
        "as_of": run.data.as_of.isoformat(),
        "data": {
            **snapshot,
            "users": run.data.n_users,
            "items": run.data.n_items,
            "interactions": int(run.data.matrix.nnz),
        },
        "ranker": {k2: v for k2, v in run.ranker_info.items()},
        "timings_s": {k2: round(v, 3) for k2, v in run.timings.items()},
        "metrics": report_json(reports),
    }
    registry = Registry(settings)
    version_id = registry.publish(run.recommender, run.data, meta)
    if promote:
        registry.promote(version_id)
    return version_id, run, reports
