"""Assignment: deterministic, uniform, exclusive within a layer, independent across layers, holdout kept out."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from playnext.config import Settings
from playnext.experiments.assignment import Assigner
from playnext.experiments.definitions import Experiment

USERS = [f"u{i}" for i in range(20_000)]


def _exp(layer: str = "default", traffic: float = 1.0, **shares: float) -> Experiment:
    shares = shares or {"control": 0.5, "treatment": 0.5}
    return Experiment(layer=layer, traffic=traffic, variants={k: {"share": v} for k, v in shares.items()})


def test_the_same_listener_always_gets_the_same_variant() -> None:
    a = Assigner({"shelf-order": _exp()})
    b = Assigner({"shelf-order": _exp()})
    assert [a.assign(u) for u in USERS[:500]] == [b.assign(u) for u in USERS[:500]]


def test_variants_are_uniform_in_their_shares() -> None:
    assigner = Assigner({"dw-cap": _exp(control=0.5, one=0.25, three=0.25)})
    counts = Counter(assigner.assign(u)[0].variant for u in USERS)
    observed = [counts["control"], counts["one"], counts["three"]]
    expected = [0.5 * len(USERS), 0.25 * len(USERS), 0.25 * len(USERS)]
    assert stats.chisquare(observed, expected).pvalue > 0.001, observed


def test_experiments_of_a_layer_are_exclusive_and_get_their_traffic() -> None:
    assigner = Assigner({"a": _exp(traffic=0.3), "b": _exp(traffic=0.5)})
    got = [assigner.assign(u) for u in USERS]
    assert all(len(g) <= 1 for g in got)
    share = Counter(g[0].experiment if g else None for g in got)
    assert abs(share["a"] / len(USERS) - 0.3) < 0.02 and abs(share["b"] / len(USERS) - 0.5) < 0.02
    assert abs(share[None] / len(USERS) - 0.2) < 0.02


def test_layers_are_independent() -> None:
    assigner = Assigner({"home": _exp("ui"), "ranker": _exp("models")})
    pairs = Counter(tuple(a.variant for a in assigner.assign(u)) for u in USERS)
    table = np.array([[pairs[("control", "control")], pairs[("control", "treatment")]],
                      [pairs[("treatment", "control")], pairs[("treatment", "treatment")]]])  # fmt: skip
    assert stats.chi2_contingency(table).pvalue > 0.001, table


def test_the_global_holdout_is_in_no_experiment_and_a_new_salt_reshuffles() -> None:
    assigner = Assigner({"x": _exp()}, holdout_share=0.1)
    held = [u for u in USERS if assigner.in_holdout(u)]
    assert abs(len(held) / len(USERS) - 0.1) < 0.01 and all(assigner.assign(u) == [] for u in held)
    resalted = Assigner({"x": _exp().model_copy(update={"salt": "v2"})})
    plain = Assigner({"x": _exp()})
    same = sum(plain.assign(u) == resalted.assign(u) for u in USERS[:2000]) / 2000
    assert 0.4 < same < 0.6  # independent draws agree half the time with two equal variants


def test_bad_definitions_are_refused_with_a_reason() -> None:
    with pytest.raises(ValidationError, match=r"add up to 0\.9"):
        _exp(control=0.5, treatment=0.4)
    with pytest.raises(ValidationError, match="at least two variants"):
        _exp(only=1.0)
    with pytest.raises(ValidationError, match="more than a layer's traffic"):
        Settings(experiments={"a": _exp(traffic=0.7), "b": _exp(traffic=0.6)})
    with pytest.raises(ValidationError, match="names are lowercase"):
        Settings(experiments={"Bad Name": _exp()})
    stopped = _exp(traffic=0.6).model_copy(update={"running": False})
    assert Settings(experiments={"a": _exp(traffic=0.7), "b": stopped}).experiments["b"].running is False
