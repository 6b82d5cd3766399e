"""Off-policy estimates of a Home shelf policy from logged pages whose true values are known by construction."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from playnext.config import Settings
from playnext.evaluation.home_policy import home_estimates, target_chances
from playnext.evaluation.off_policy import estimate
from playnext.models.generators import build_generator
from playnext.models.recommender import Recommender
from playnext.models.registry import Registry
from playnext.surfaces.bandit import ShelfStats
from tests.models.small import two_tastes
from tests.pipelines.lake import T0, ev, write_events

# P(stream) of each shelf's card at the top and second position.
STREAM = {("a", 0): 0.6, ("a", 1): 0.3, ("b", 0): 0.2, ("b", 1): 0.1}
A_FIRST = 0.8  # the logging bandit puts shelf a on top this often


def _logged_pages(settings: Settings, pages: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    records = []
    for p in range(pages):
        user = f"u{p % 40}"
        order = ("a", "b") if rng.random() < A_FIRST else ("b", "a")
        chance = A_FIRST if order[0] == "a" else 1 - A_FIRST
        for pos, shelf in enumerate(order):
            records.append(ev("impression", f"i{p}-{pos}", user, f"x{p}-{pos}", p, surface=f"home/{shelf}",
                              position=pos, request_id=f"r{p}", propensity=chance))  # fmt: skip
            if rng.random() < STREAM[(shelf, pos)]:
                records.append(ev("play", f"s{p}-{pos}", user, f"x{p}-{pos}", p + 0.5, ms_played=120_000))
    write_events(settings, records)


def test_uniform_shelf_order_is_estimated_from_a_biased_bandits_pages(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data")
    data = two_tastes(n_users=40, n_items=60)
    registry = Registry(settings)
    version_id = registry.publish(Recommender({"popularity": build_generator("popularity")}).fit(data), data, {})
    _logged_pages(settings, 3000)
    found = home_estimates(settings, registry.load(version_id), "uniform", T0 - dt.timedelta(days=1),
                           T0 + dt.timedelta(days=30), reward_name="streamed_30s")  # fmt: skip
    logged_truth = A_FIRST * (0.6 + 0.1) + (1 - A_FIRST) * (0.2 + 0.3)
    uniform_truth = 0.5 * (0.6 + 0.1) + 0.5 * (0.2 + 0.3)
    assert found["logged"].covers(logged_truth), found["logged"]
    for method in ("ips", "snips", "dr"):
        assert found[method].covers(uniform_truth), found[method]
        assert not found[method].covers(logged_truth), found[method]  # it measures the target, not the logger
    with pytest.raises(ValueError, match="unknown target"):
        home_estimates(settings, registry.load(version_id), "best", T0, T0 + dt.timedelta(days=1))
    with pytest.raises(ValueError, match="no Home impressions"):
        home_estimates(settings, registry.load(version_id), "uniform", T0 + dt.timedelta(days=40),
                       T0 + dt.timedelta(days=41))  # fmt: skip


def test_target_chances_are_distributions_over_positions() -> None:
    stats = ShelfStats()
    stats.add("light", "a", 90, 100)
    stats.add("light", "b", 10, 100)
    for target in ("uniform", "greedy", "thompson"):
        chances = target_chances(target, stats, "light", ["a", "b", "c"])
        assert np.allclose(chances.sum(axis=0), 1) and np.allclose(chances.sum(axis=1), 1)
    assert target_chances("greedy", stats, "light", ["b", "a"])[1, 0] == 1.0  # a, the better shelf, on top


def test_estimator_input_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="one value per logged row"):
        estimate(np.arange(3), np.ones(3), np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="probabilities"):
        estimate(np.arange(3), np.ones(3), np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="at least two"):
        estimate(np.zeros(3), np.ones(3), np.ones(3), np.ones(3))
