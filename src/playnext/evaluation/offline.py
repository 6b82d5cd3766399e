"""``playnext eval``: a temporal holdout scored with full ranking, per segment, for several models side by side.

Every item of the catalog is a candidate and the listener's training items are excluded, so numbers are
comparable with published full-ranking results (no sampled negatives, which flatter weak models). Listeners are
split into segments by how much history they had at the cutoff: ``new`` (none: cold start), ``light`` and
``heavy`` (the top fifth by training interactions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from playnext.config import Settings
from playnext.evaluation.metrics import coverage, hits_matrix, intra_list_diversity, ndcg_at_k, novelty, recall_at_k
from playnext.models.base import CandidateModel
from playnext.models.data import Holdout, load_holdout
from playnext.models.interactions import Candidates, Interactions
from playnext.models.recommender import Recommender
from playnext.models.registry import ModelVersion

Recommend = Callable[[np.ndarray, int], Candidates]
SEGMENTS = ("all", "new", "light", "heavy")


@dataclass
class Report:
    name: str
    k: int
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # segment -> metric -> value
    users: dict[str, int] = field(default_factory=dict)

    def row(self, segment: str = "all") -> dict[str, float]:
        return self.metrics.get(segment, {})


def segments_of(data: Interactions, users: np.ndarray) -> np.ndarray:
    counts = np.diff(data.matrix.indptr)
    heavy_from = np.quantile(counts, 0.8) if len(counts) else 0
    rows = data.user_index(users)
    seg = np.full(len(users), "light", dtype=object)
    seg[rows < 0] = "new"
    known = rows >= 0
    seg[known & (counts[np.maximum(rows, 0)] > heavy_from)] = "heavy"
    return seg


def evaluate(name: str, recommend: Recommend, data: Interactions, holdout: Holdout, k: int = 20) -> Report:
    users = data.user_index(holdout.users)
    recommended = recommend(users, k).items
    n_pos = np.array([len(p) for p in holdout.positives])
    hits = hits_matrix(recommended, holdout.positives)
    _, genre_codes = np.unique(data.meta.genre.astype(str), return_inverse=True)
    item_users = np.asarray((data.matrix > 0).sum(axis=0)).ravel()
    per_user = {
        f"recall@{k}": recall_at_k(hits, n_pos),
        f"ndcg@{k}": ndcg_at_k(hits, n_pos),
        "diversity": intra_list_diversity(recommended, genre_codes),
        "novelty": novelty(recommended, item_users, data.n_users),
    }
    report = Report(name=name, k=k)
    seg = segments_of(data, holdout.users)
    for segment in SEGMENTS:
        mask = np.ones(len(seg), bool) if segment == "all" else seg == segment
        report.users[segment] = int(mask.sum())
        if not mask.any():
            continue
        values = {metric: float(np.mean(v[mask])) for metric, v in per_user.items()}
        values["coverage"] = coverage(recommended[mask], data.n_items)
        report.metrics[segment] = values
    return report


def with_cold_start(model: CandidateModel, fallback: CandidateModel) -> Recommend:
    """``model`` for listeners it knows, ``fallback`` (popularity) for those without history: how any single
    generator would be served, so comparisons between generators are not decided by who handles cold start."""

    def recommend(users: np.ndarray, n: int) -> Candidates:
        out = model.recommend(users, n)
        cold = users < 0
        if cold.any():
            got = fallback.recommend(users[cold], n)
            out.items[cold], out.scores[cold] = got.items, got.scores
        return out

    return recommend


def evaluate_stack(
    recommender: Recommender, data: Interactions, holdout: Holdout, k: int = 20, generators: bool = True
) -> list[Report]:
    """The recommender, then each of its generators served alone (with the same cold-start fallback)."""
    reports = [evaluate("recommender", recommender.recommend, data, holdout, k)]
    fallback = recommender.fallback
    if generators:
        for name, model in recommender.generators.items():
            recommend = with_cold_start(model, fallback) if fallback is not None else model.recommend
            reports.append(evaluate(name, recommend, data, holdout, k))
    return reports


def evaluate_version(settings: Settings, version: ModelVersion, k: int = 20, generators: bool = False) -> list[Report]:
    """A registered version on the events after what it was trained on: its cutoff's holdout, or, for a version
    trained on everything, what listeners did since (a forward evaluation)."""
    start = version.data.as_of
    holdout = load_holdout(settings, version.data, start)
    if not len(holdout.users):
        return []
    reports = evaluate_stack(version.recommender, version.data, holdout, k, generators)
    for r in reports:
        r.name = version.id if r.name == "recommender" else f"{version.id}:{r.name}"
    return reports


def report_json(reports: list[Report]) -> list[dict[str, Any]]:
    return [{"name": r.name, "k": r.k, "users": r.users, "metrics": r.metrics} for r in reports]
