"""The statistics under the analysis, each against a known answer or a simulation of its own guarantee."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from playnext.experiments.statistics import (
    Sample,
    boundaries,
    compare,
    linearized,
    sample_ratio,
    sample_size,
    sequential_power,
    spent,
)


def test_one_look_at_full_information_is_the_fixed_test() -> None:
    assert boundaries([1.0], 0.05)[0] == pytest.approx(1.959964, abs=1e-5)
    assert spent(1.0, 0.05) == pytest.approx(0.05)


def test_repeated_looks_spend_exactly_alpha_under_no_effect() -> None:
    """Brownian z statistics at five looks, 200,000 times: the chance of ever crossing is alpha, while crossing
    the fixed 1.96 at any of them would be about 14 %."""
    t = np.array([0.2, 0.4, 0.6, 0.8, 1.0])
    b = boundaries(t, 0.05)
    assert np.all(np.diff(b) < 0) and b[-1] > 1.96  # O'Brien-Fleming: strict early, close to fixed at the end
    rng = np.random.default_rng(0)
    steps = rng.standard_normal((200_000, 5)) * np.sqrt(np.diff(t, prepend=0))
    z = np.cumsum(steps, axis=1) / np.sqrt(t)
    crossed = (np.abs(z) >= b).any(axis=1).mean()
    naive = (np.abs(z) >= 1.96).any(axis=1).mean()
    assert abs(crossed - 0.05) < 0.003, crossed
    assert naive > 0.12


def test_boundaries_refuse_looks_that_go_backwards() -> None:
    with pytest.raises(ValueError, match="increasing"):
        boundaries([0.5, 0.5], 0.05)


def test_ratio_metric_variance_is_the_delta_method() -> None:
    """The linearized values' variance over n matches the spread of the ratio across many samples."""
    rng = np.random.default_rng(1)
    ratios, predicted = [], []
    for _ in range(2000):
        den = rng.poisson(5, 400) + 1.0
        num = rng.binomial(den.astype(int), 0.3).astype(float)
        ratios.append(num.sum() / den.sum())
        predicted.append(np.var(linearized(num, den), ddof=1) / 400)
    assert np.var(ratios) == pytest.approx(np.mean(predicted), rel=0.1)


def test_cuped_removes_what_the_pre_period_predicts_without_bias() -> None:
    rng = np.random.default_rng(2)
    effects, reductions = [], []
    for _ in range(300):
        pre_c, pre_t = rng.gamma(2, 2, 1000), rng.gamma(2, 2, 1000)
        c = pre_c + rng.normal(0, 2, 1000)
        t = pre_t + rng.normal(0, 2, 1000) + 0.1
        result = compare(Sample.of_means(c, pre_c), Sample.of_means(t, pre_t))
        effects.append(result.diff)
        reductions.append(result.variance_reduction)
    rho2 = 8 / (8 + 4)  # var(pre) = 2 * 2**2 = 8, noise variance 4
    assert np.mean(reductions) == pytest.approx(rho2, abs=0.03)
    assert np.mean(effects) == pytest.approx(0.1, abs=0.02)
    raw = compare(Sample.of_means(c, pre_c), Sample.of_means(t, pre_t), cuped=False)
    assert raw.variance_reduction == 0 and raw.se > result.se


def test_compare_needs_two_listeners_a_side() -> None:
    with pytest.raises(ValueError, match="at least two"):
        compare(Sample.of_means(np.ones(1)), Sample.of_means(np.ones(5)))
    with pytest.raises(ValueError, match="one value per listener"):
        Sample(np.ones(3), np.ones(2))


def test_sample_ratio_flags_a_skewed_split_only() -> None:
    assert not sample_ratio({"a": 5000, "b": 5080}, {"a": 0.5, "b": 0.5}).mismatch
    skewed = sample_ratio({"a": 5000, "b": 5400}, {"a": 0.5, "b": 0.5})
    assert skewed.mismatch and skewed.p_value < 0.001
    assert not sample_ratio({"a": 2000, "b": 8000}, {"a": 0.2, "b": 0.8}).mismatch
    assert sample_ratio({}, {"a": 0.5, "b": 0.5}).p_value == 1.0


def test_sample_size_gives_the_power_it_promises() -> None:
    n = sample_size(0.1, 1.0, alpha=0.05, power=0.8)
    closed_form = 2 * (stats.norm.isf(0.025) + stats.norm.isf(0.2)) ** 2 / 0.1**2
    assert n == pytest.approx(closed_form, rel=0.01)
    n3 = sample_size(0.1, 1.0, alpha=0.05, power=0.8, looks=3)
    assert n < n3 < 1.05 * n  # three looks cost a few percent more listeners
    drift = 0.1 / np.sqrt(2 / n3)
    assert sequential_power(drift, [1 / 3, 2 / 3, 1.0], 0.05) == pytest.approx(0.8, abs=0.01)
    with pytest.raises(ValueError):
        sample_size(0.0, 1.0)
