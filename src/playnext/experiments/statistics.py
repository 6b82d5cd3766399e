"""The statistics of an A/B comparison: effects with confidence intervals, CUPED, group sequential boundaries,
sample-ratio checks and sample sizes.

Every metric is a ratio of per-listener sums, ``sum(num) / sum(den)``: a mean per listener has ``den = 1``; a rate
such as skips per play has the listener's plays as ``den``. The delta method turns each listener into one
*linearized* value whose mean has the ratio's variance, so means and ratios, with or without CUPED, go through the
same arithmetic. Listeners are the randomization unit, so they are the independent observations; impressions or
plays of one listener are not.

Repeated looks use a Lan-DeMets spending function with O'Brien-Fleming shape: each look spends the part of alpha
that the information gathered so far allows, so analysing every day keeps the overall false-positive rate at alpha.
The distributions come from scipy; the fixed-design sample size from statsmodels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

# Boundaries beyond this many standard errors cannot be crossed in practice; capping keeps the integrals finite.
MAX_Z = 30.0
SRM_ALPHA = 0.001  # the usual threshold: a mismatch this unlikely is a bug, not chance


@dataclass(frozen=True)
class Sample:
    """One variant's listeners: numerator and denominator of the metric per listener, after and before exposure."""

    num: np.ndarray
    den: np.ndarray
    pre_num: np.ndarray | None = None
    pre_den: np.ndarray | None = None

    def __post_init__(self) -> None:
        lengths = {len(a) for a in (self.num, self.den, self.pre_num, self.pre_den) if a is not None}
        if len(lengths) != 1:
            raise ValueError("a sample's arrays must all have one value per listener")

    @property
    def n(self) -> int:
        return len(self.num)

    @classmethod
    def of_means(cls, values: np.ndarray, pre: np.ndarray | None = None) -> Sample:
        ones = np.ones(len(values))
        return cls(np.asarray(values, float), ones, None if pre is None else np.asarray(pre, float), ones)


def ratio(num: np.ndarray, den: np.ndarray) -> float:
    total = float(np.sum(den))
    return float(np.sum(num)) / total if total else float("nan")


def linearized(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Per-listener values whose mean is the ratio and whose variance over n is the ratio's delta-method variance."""
    mean_den = float(np.mean(den)) if len(den) else 0.0
    if mean_den == 0:
        return np.zeros(len(num))
    return ratio(num, den) + (num - ratio(num, den) * den) / mean_den


@dataclass(frozen=True)
class Comparison:
    control: float  # the metric in control (CUPED-adjusted when ``cuped``)
    treatment: float
    diff: float  # treatment - control
    se: float  # of diff
    relative: float  # diff / control
    relative_se: float
    n_control: int
    n_treatment: int
    cuped: bool
    variance_reduction: float  # 1 - var(adjusted diff) / var(raw diff); 0 without CUPED

    def interval(self, z: float, relative: bool = False) -> tuple[float, float]:
        est, se = (self.relative, self.relative_se) if relative else (self.diff, self.se)
        return est - z * se, est + z * se

    @property
    def z(self) -> float:
        return self.diff / self.se if self.se > 0 else 0.0


def compare(control: Sample, treatment: Sample, cuped: bool = True) -> Comparison:
    """Treatment against control; with ``cuped`` and pre-period values, the pre-period's predictable part of each
    listener's metric is removed (one pooled coefficient, so the adjustment cannot favour either side)."""
    if control.n < 2 or treatment.n < 2:
        raise ValueError("each variant needs at least two listeners to estimate a variance")
    y_c, y_t = linearized(control.num, control.den), linearized(treatment.num, treatment.den)
    raw_var = np.var(y_c, ddof=1) / control.n + np.var(y_t, ddof=1) / treatment.n
    can_adjust = cuped and control.pre_num is not None and treatment.pre_num is not None
    if can_adjust:
        x_c = linearized(control.pre_num, control.pre_den)  # type: ignore[arg-type]
        x_t = linearized(treatment.pre_num, treatment.pre_den)  # type: ignore[arg-type]
        x, y = np.concatenate([x_c, x_t]), np.concatenate([y_c, y_t])
        x_var = float(np.var(x, ddof=1))
        theta = float(np.cov(x, y, ddof=1)[0, 1] / x_var) if x_var > 0 else 0.0
        mean_x = float(np.mean(x))
        y_c = y_c - theta * (x_c - mean_x)
        y_t = y_t - theta * (x_t - mean_x)
    var_c, var_t = np.var(y_c, ddof=1) / control.n, np.var(y_t, ddof=1) / treatment.n
    m_c, m_t = float(np.mean(y_c)), float(np.mean(y_t))
    diff = m_t - m_c
    se = float(np.sqrt(var_c + var_t))
    relative = diff / m_c if m_c else float("nan")
    relative_se = float(np.sqrt(var_t / m_c**2 + m_t**2 * var_c / m_c**4)) if m_c else float("nan")
    reduction = float(1.0 - (var_c + var_t) / raw_var) if can_adjust and raw_var > 0 else 0.0
    return Comparison(
        control=m_c, treatment=m_t, diff=diff, se=se, relative=relative, relative_se=relative_se,
        n_control=control.n, n_treatment=treatment.n, cuped=can_adjust, variance_reduction=reduction,
    )  # fmt: skip


# --- group sequential boundaries -------------------------------------------------------------------------------


def spent(fraction: float, alpha: float) -> float:
    """Alpha spent by information ``fraction`` (Lan-DeMets, O'Brien-Fleming shape; two-sided)."""
    if fraction <= 0:
        return 0.0
    t = min(fraction, 1.0)
    return float(2.0 * stats.norm.sf(stats.norm.isf(alpha / 2.0) / np.sqrt(t)))


def _correlation(fractions: np.ndarray) -> np.ndarray:
    """corr(Z_i, Z_j) = sqrt(t_i / t_j) for i <= j: the z statistics of one accumulating sample."""
    t = np.asarray(fractions, float)
    small, large = np.minimum.outer(t, t), np.maximum.outer(t, t)
    return np.sqrt(small / large)


def _inside(bounds: np.ndarray, fractions: np.ndarray, drift: float = 0.0) -> float:
    """P(|Z_k| < bounds_k for every look) when the standardized effect is ``drift`` at full information."""
    mean = drift * np.sqrt(fractions)
    if len(bounds) == 1:
        return float(stats.norm.cdf(bounds[0] - mean[0]) - stats.norm.cdf(-bounds[0] - mean[0]))
    mvn = stats.multivariate_normal(mean=mean, cov=_correlation(fractions), allow_singular=True)
    return float(mvn.cdf(bounds, lower_limit=-bounds, rng=np.random.default_rng(0)))


def boundaries(fractions: list[float] | np.ndarray, alpha: float) -> np.ndarray:
    return np.array(_boundaries(tuple(float(f) for f in fractions), float(alpha)))


@functools.lru_cache(maxsize=1024)
def _boundaries(fractions: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    """Two-sided z boundary of each look, given the information fraction at every look so far (increasing).

    Look k's boundary is set so that crossing at any look up to k has probability ``spent(t_k)`` under no effect;
    a look past full information (t >= 1) spends what is left of alpha."""
    t = np.minimum(np.asarray(fractions, float), 1.0)
    if len(t) == 0 or np.any(t <= 0) or np.any(np.diff(t) <= 0):
        raise ValueError("information fractions must be positive and strictly increasing")
    out = np.empty(len(t))
    for k in range(len(t)):
        target = 1.0 - spent(float(t[k]), alpha)  # P(no crossing through look k)
        if k == 0:
            out[0] = min(float(stats.norm.isf((1.0 - target) / 2.0)), MAX_Z)
            continue
        if _inside(np.append(out[:k], MAX_Z), t[: k + 1]) <= target:
            out[k] = MAX_Z  # the earlier looks already spent this much: nothing left to spend here
            continue

        def gap(b: float, k: int = k, target: float = target) -> float:
            return _inside(np.append(out[:k], b), t[: k + 1]) - target

        out[k] = optimize.brentq(gap, 0.5, MAX_Z, xtol=1e-4)
    return tuple(out)


def sequential_power(drift: float, fractions: list[float] | np.ndarray, alpha: float) -> float:
    """Chance that a design with these looks crosses a boundary when the standardized effect at full information
    is ``drift`` (= effect / se at the planned sample size)."""
    t = np.asarray(fractions, float)
    return 1.0 - _inside(boundaries(t, alpha), t, drift)


def planned_looks(looks: int) -> np.ndarray:
    return np.arange(1, looks + 1) / looks


def sample_size(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8, looks: int = 1) -> int:
    """Listeners per variant needed to detect an absolute ``effect`` on a metric with per-listener ``sd`` (two
    variants of equal share) with ``power``, when the data are analysed at ``looks`` equally spaced looks."""
    from statsmodels.stats.power import NormalIndPower

    if effect == 0 or sd <= 0:
        raise ValueError("the effect must be non-zero and the standard deviation positive")
    fixed = float(NormalIndPower().solve_power(effect_size=abs(effect) / sd, alpha=alpha, power=power, ratio=1.0))
    if looks == 1:
        return int(np.ceil(fixed))
    t = planned_looks(looks)
    drift_fixed = stats.norm.isf(alpha / 2) + stats.norm.isf(1 - power)
    drift = optimize.brentq(lambda d: sequential_power(d, t, alpha) - power, drift_fixed, drift_fixed * 2, xtol=1e-4)
    return int(np.ceil(fixed * (drift / drift_fixed) ** 2))


# --- sample ratio -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleRatio:
    observed: dict[str, int]
    expected_shares: dict[str, float]
    chi2: float
    p_value: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < SRM_ALPHA


def sample_ratio(observed: dict[str, int], shares: dict[str, float]) -> SampleRatio:
    """Chi-square goodness of fit of listeners per variant against the configured shares."""
    names = sorted(shares)
    counts = np.array([observed.get(name, 0) for name in names], float)
    total = counts.sum()
    if total == 0:
        return SampleRatio(dict(observed), dict(shares), 0.0, 1.0)
    expected = np.array([shares[name] for name in names]) / sum(shares.values()) * total
    chi2, p = stats.chisquare(counts, expected)
    return SampleRatio({n: int(c) for n, c in zip(names, counts, strict=True)}, dict(shares), float(chi2), float(p))
