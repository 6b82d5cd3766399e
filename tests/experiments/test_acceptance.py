"""Issue 6's acceptance on the closed loop: simulated listeners assigned by the real ``Assigner`` react to what each
variant's policy shows them, and the real analysis judges the result (``synth.experiment_checks``).

- A/A: hundreds of experiments with identical variants; the false-positive rate over three sequential looks must
  fall within the binomial band of alpha.
- A/B: a treatment with a built-in improvement, run at the sample size ``sample_size`` plans for 80 % power; the
  share of experiments that ship it must match that power.
- SRM: a variant that loses some of its exposure logs is caught, and the verdict is blocked.
- Off-policy: IPS, SNIPS and doubly robust intervals from logged, explored lists cover the value the target
  policy really earns when it is run.
"""

from __future__ import annotations

import pytest
from scipy import stats

from playnext.experiments.analysis import BLOCKED
from playnext.experiments.statistics import SRM_ALPHA
from playnext.synth.experiment import ExperimentLoop
from playnext.synth.experiment_checks import aa_tests, ab_tests, ope_coverage, srm_check
from playnext.synth.world import WorldParams, build_world

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loop() -> ExperimentLoop:
    return ExperimentLoop(build_world(WorldParams(users=3000, tracks=2000, days=1, seed=3)), pool=60, seed=1)


def _band(p: float, n: int) -> tuple[float, float]:
    """The 99 % binomial interval for a rate p observed over n trials."""
    return stats.binom.ppf(0.005, n, p) / n, stats.binom.ppf(0.995, n, p) / n


def test_aa_false_positive_rate_is_alpha(loop: ExperimentLoop) -> None:
    found = aa_tests(loop, runs=240)
    low, high = _band(0.05, found.runs)
    assert low <= found.false_positive_rate <= high, found
    assert found.variance_reduction > 0.1  # the pre-period covariate does carry signal here


def test_ab_detects_a_built_in_improvement_with_the_planned_power(loop: ExperimentLoop) -> None:
    found = ab_tests(loop, runs=160)
    assert found.pilot_effect == pytest.approx(found.effect, rel=0.3)  # the loop delivers the effect built in
    low, high = _band(found.power, found.runs)
    assert low <= found.detected <= high, found


def test_a_variant_that_loses_exposure_logs_is_caught(loop: ExperimentLoop) -> None:
    found = srm_check(loop, listeners=20_000, lost=0.1)
    assert found.healthy_p >= SRM_ALPHA and found.broken_p < SRM_ALPHA and found.broken_verdict == BLOCKED, found


def test_off_policy_intervals_cover_the_target_policys_true_value(loop: ExperimentLoop) -> None:
    found = ope_coverage(loop, repeats=60)
    assert found.truth > found.logging_value  # the target is better: there is something to find
    assert all(c >= 0.85 for c in found.coverage.values()), found
    assert found.width["dr"] < found.width["ips"] and found.width["snips"] < found.width["ips"], found
