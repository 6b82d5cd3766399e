"""Off-policy estimates: what a new ranker or bandit policy would earn, from impressions another policy logged.

Lists are scored with the item-position model: a list's value is the sum over its positions of the reward of the
item shown there, and the reward of an item at a position does not depend on the rest of the list (the
simulator's listeners behave exactly so: they examine a position with a probability that falls with it, then react
to the item). Each logged (request, position) then has a weight ``w = target / logging`` of the probabilities that
the two policies put that item at that position, which needs far less overlap than whole-list propensities.

- **IPS**: mean over requests of ``sum_k w_k r_k``; unbiased when the logging policy could show what the target
  would.
- **SNIPS**: IPS divided by the mean weight per position (whose expectation is 1): a little biased, much steadier
  when a few weights are large.
- **Doubly robust**: a reward model's prediction for what the target shows, plus IPS on the model's residuals;
  unbiased if either the propensities or the model are right, and tighter when the model is good.
Requests are the independent units, so intervals are normal intervals over per-request values (SNIPS by the delta
method).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    method: str
    value: float
    se: float
    low: float
    high: float
    requests: int

    def covers(self, truth: float) -> bool:
        return self.low <= truth <= self.high


def _per_request(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(groups, weights=values, minlength=n)


def normal_estimate(method: str, per_request: np.ndarray, alpha: float, value: float | None = None,
              influence: np.ndarray | None = None) -> Estimate:  # fmt: skip
    n = len(per_request)
    center = float(np.mean(per_request)) if value is None else value
    spread = per_request if influence is None else influence
    se = float(np.std(spread, ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    z = float(stats.norm.isf(alpha / 2))
    return Estimate(method, center, se, center - z * se, center + z * se, n)


def estimate(
    requests: np.ndarray,
    reward: np.ndarray,
    logging: np.ndarray,
    target: np.ndarray,
    *,
    predicted: np.ndarray | None = None,
    direct: np.ndarray | None = None,
    alpha: float = 0.05,
) -> dict[str, Estimate]:
    """Per logged (request, position) row: the request it belongs to, its reward, and the probability that the
    logging and the target policy put this item at this position. For the doubly robust estimate, ``predicted``
    is the reward model at each logged row and ``direct`` per request the model's expected value of the target's
    list (the sum over positions of its prediction for what the target shows there)."""
    requests = np.asarray(requests)
    reward, logging, target = (np.asarray(a, float) for a in (reward, logging, target))
    if not (len(requests) == len(reward) == len(logging) == len(target)):
        raise ValueError("requests, reward, logging and target need one value per logged row")
    if np.any(logging <= 0) or np.any(logging > 1) or np.any(target < 0) or np.any(target > 1):
        raise ValueError("probabilities must lie in (0, 1] for logging and [0, 1] for the target")
    _, groups = np.unique(requests, return_inverse=True)
    n = int(groups.max()) + 1 if len(groups) else 0
    if n < 2:
        raise ValueError("off-policy estimates need at least two logged requests")
    w = target / logging
    ips = _per_request(groups, w * reward, n)
    positions = np.bincount(groups, minlength=n).astype(float)
    mean_w = _per_request(groups, w, n) / positions  # expectation 1 per request
    out = {"ips": normal_estimate("ips", ips, alpha)}
    snips_value = float(ips.mean() / mean_w.mean())
    out["snips"] = normal_estimate("snips", ips, alpha, snips_value, (ips - snips_value * mean_w) / mean_w.mean())
    if predicted is not None and direct is not None:
        direct = np.asarray(direct, float)
        if len(direct) != n or len(predicted) != len(reward):
            raise ValueError("predicted needs one value per logged row and direct one per request")
        residual = _per_request(groups, w * (reward - np.asarray(predicted, float)), n)
        out["dr"] = normal_estimate("dr", direct + residual, alpha)
    return out


def position_propensities(ranks: np.ndarray, epsilon: float) -> np.ndarray:
    """P(item at the position it was shown) under "rank, then with probability ``epsilon`` shuffle the whole list
    uniformly": the exploration a logging policy needs for others to be evaluated on its logs. ``ranks[i, k]`` is
    the rank (0 = top) the ranker gave the item shown at position k."""
    k = ranks.shape[1]
    return (1 - epsilon) * (ranks == np.arange(k)) + epsilon / k
