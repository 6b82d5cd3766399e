"""Off-policy estimates of another Home shelf policy from the Home impressions the served bandit logged.

Each logged Home request is a page of shelves; the bandit logged, with every card, the probability that its shelf
got the position it got (``propensity``). A shelf's reward is the sum of the reward (a named ``Reward``) of its
cards. The target policies:
- ``uniform``: shelves in random order;
- ``greedy``: shelves by their posterior stream rate for the listener's segment, best first, every time;
- ``thompson``: Thompson sampling with the shelf statistics learned from the lake now (the bandit as it would
  serve today, against the one that logged).
Pages are grouped by (segment, shelves shown) so each group's target probabilities are computed once. Two things
are approximated and said so: the shelves a page could have had are taken to be those it showed (a shelf emptied
by deduplication is not in the log), and the segment is the listener's under the served model version.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow.compute as pc

from playnext.config import Settings
from playnext.evaluation.off_policy import Estimate, estimate, normal_estimate
from playnext.models.data import load_impression_outcomes
from playnext.models.registry import ModelVersion
from playnext.rewards.definitions import register_reward
from playnext.surfaces.bandit import ShelfStats, heavy_from, segment_of, shelf_stats_from_lake

TARGETS = ("uniform", "greedy", "thompson")
SHRINK = 10.0  # pseudo-observations pulling a (shelf, position) cell's mean reward toward its position's mean


def target_chances(target: str, stats: ShelfStats, segment: str, shelves: list[str]) -> np.ndarray:
    """(shelves, positions): the target's probability of each shelf at each position."""
    n = len(shelves)
    if target == "uniform":
        return np.full((n, n), 1.0 / n)
    if target == "thompson":
        return stats.position_chances(segment, shelves)
    if target == "greedy":
        a, b = stats.beta(segment, shelves)
        order = np.argsort(-(a / (a + b)), kind="stable")
        chances = np.zeros((n, n))
        chances[order, np.arange(n)] = 1.0
        return chances
    raise ValueError(f"unknown target policy {target!r}; known: {', '.join(TARGETS)}")


def home_estimates(
    settings: Settings, version: ModelVersion, target: str, start: dt.datetime, end: dt.datetime,
    reward_name: str | None = None, alpha: float = 0.05,
) -> dict[str, Estimate]:  # fmt: skip
    """IPS, SNIPS and doubly robust values of ``target``, and the logging policy's own value (``logged``), in
    reward per Home page, from the Home pages shown in [start, end)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target policy {target!r}; known: {', '.join(TARGETS)}")
    outcomes = load_impression_outcomes(settings, start, end)
    outcomes = outcomes.filter(pc.starts_with(outcomes["surface"], "home/"))
    if outcomes.num_rows == 0:
        raise ValueError(f"no Home impressions were logged between {start:%Y-%m-%d} and {end:%Y-%m-%d}")
    reward = register_reward(settings, reward_name or settings.models.reward).value(outcomes)
    request = outcomes["request_id"].to_numpy(zero_copy_only=False).astype(str)
    shelf = pc.utf8_slice_codeunits(outcomes["surface"], 5).to_numpy(zero_copy_only=False).astype(str)
    position = outcomes["position"].to_numpy(zero_copy_only=False).astype(np.int64)
    propensity = outcomes["propensity"].fill_null(1.0).to_numpy(zero_copy_only=False).astype(float)
    users = outcomes["user_id"].to_numpy(zero_copy_only=False).astype(str)
    # One row per (page, shelf): summed reward, the shelf's first card position, its logged propensity.
    keys = np.char.add(np.char.add(request, "\x1f"), shelf.astype(str))
    _, first, unit = np.unique(keys, return_index=True, return_inverse=True)
    unit_reward = np.bincount(unit, weights=reward)
    unit_top = np.full(len(first), np.iinfo(np.int64).max)
    np.minimum.at(unit_top, unit, position)
    unit_request, unit_shelf = request[first], shelf[first]
    unit_propensity, unit_user = propensity[first], users[first]
    order = np.lexsort((unit_top, unit_request))  # pages together, shelves down the page
    unit_request, unit_shelf, unit_reward = unit_request[order], unit_shelf[order], unit_reward[order]
    unit_propensity, unit_user = unit_propensity[order], unit_user[order]
    pages, page_of, page_size = np.unique(unit_request, return_inverse=True, return_counts=True)
    rank = np.arange(len(unit_request)) - np.repeat(np.cumsum(page_size) - page_size, page_size)
    counts = np.diff(version.data.matrix.indptr)
    listeners, listener_of = np.unique(unit_user, return_inverse=True)
    rows = version.data.user_index(listeners)
    heavy = heavy_from(version)
    segments = np.array([segment_of(int(counts[r]) if r >= 0 else 0, heavy) for r in rows.tolist()], dtype=object)
    segment = segments[listener_of]
    stats = shelf_stats_from_lake(settings, version)
    # Reward model for the doubly robust estimate: mean reward per (shelf, position), shrunk to the position's.
    names, shelf_code = np.unique(unit_shelf, return_inverse=True)
    width = int(rank.max()) + 1
    shown_at = np.maximum(np.bincount(rank, minlength=width), 1)
    by_rank = np.bincount(rank, weights=unit_reward, minlength=width) / shown_at
    cell = shelf_code * width + rank
    cell_sum = np.bincount(cell, weights=unit_reward, minlength=len(names) * width).reshape(len(names), width)
    cell_n = np.bincount(cell, minlength=len(names) * width).reshape(len(names), width)
    q_table = (cell_sum + SHRINK * by_rank) / (cell_n + SHRINK)
    code_of = {str(name): i for i, name in enumerate(names.tolist())}
    target_p = np.empty(len(unit_request))
    predicted = q_table[shelf_code, rank]
    direct = np.empty(len(pages))
    starts = np.cumsum(page_size) - page_size
    groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for p, lo in enumerate(starts.tolist()):
        shown = tuple(unit_shelf[lo : lo + page_size[p]].tolist())
        groups.setdefault((str(segment[lo]), shown), []).append(p)
    for (seg, shown), members in groups.items():
        chances = target_chances(target, stats, seg, list(shown))
        q = q_table[[code_of[s] for s in shown], : len(shown)]
        idx = np.asarray(members)
        direct[idx] = float((chances * q).sum())
        for j in range(len(shown)):
            target_p[starts[idx] + j] = chances[j, rank[starts[idx] + j]]
    found = estimate(page_of, unit_reward, np.clip(unit_propensity, 1e-6, 1.0), target_p,
                     predicted=predicted, direct=direct, alpha=alpha)  # fmt: skip
    logged = np.bincount(page_of, weights=unit_reward)
    return {"logged": normal_estimate("logged", logged, alpha), **found}
