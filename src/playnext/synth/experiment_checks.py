"""The experiment system's own checks on the closed loop (``synth.experiment``): how often it cries wolf, how
often it finds a real improvement, whether it catches a broken split, whether off-policy intervals cover the truth.

The acceptance tests assert on these numbers and ``bench/experiments.py`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from playnext.evaluation.off_policy import estimate
from playnext.experiments.analysis import SHIP, Analysis, evaluate
from playnext.experiments.definitions import Experiment
from playnext.experiments.statistics import compare, planned_looks, sample_size
from playnext.synth.experiment import ExperimentLoop, Outcome, Policy, policy_value, slates

LOOKS = 3


def two_variants(salt: str, planned: int) -> Experiment:
    return Experiment(
        variants={"control": {"share": 0.5}, "treatment": {"share": 0.5}}, success_metrics=["streams"],
        guardrails=[{"metric": "skip_rate", "margin": 0.05}], planned_sample_size=planned, salt=salt,
    )  # fmt: skip


def run_sequential(exp: Experiment, out: Outcome, planned: int, looks: int = LOOKS) -> Analysis:
    """Looks at equal shares of the planned listeners as they arrive; stops at the first verdict."""
    fractions = planned_looks(looks)
    for k in range(1, looks + 1):
        first = int(fractions[k - 1] * planned)
        result = evaluate(exp, "x", lambda m, v, first=first: out.sample(m, v, first), out.counts(first),
                          list(fractions[:k]))  # fmt: skip
        if result.verdict != "keep running":
            return result
    return result


@dataclass
class AARun:
    runs: int
    false_positive_rate: float
    variance_reduction: float  # mean over runs, for streams


def aa_tests(loop: ExperimentLoop, runs: int = 240, planned: int = 1200, policy: Policy = Policy(0.3)) -> AARun:
    positives, reductions = 0, []
    for i in range(runs):
        exp = two_variants(f"aa-{i}", planned)
        result = run_sequential(exp, loop.run(exp, "x", {"control": policy, "treatment": policy}, planned), planned)
        streams = next(r for r in result.results if r.metric == "streams")
        positives += streams.significant
        reductions.append(streams.variance_reduction)
    return AARun(runs, positives / runs, float(np.mean(reductions)))


@dataclass
class ABRun:
    runs: int
    effect: float  # true streams per listener gained, from the simulator's exact stream chances
    pilot_effect: float
    planned: int  # listeners, both variants
    detected: float  # share of runs that shipped the treatment
    power: float  # what the planned size promises


def ab_tests(loop: ExperimentLoop, runs: int = 160, control: Policy = Policy(0.45), better: Policy = Policy(0.25),
             power: float = 0.8) -> ABRun:  # fmt: skip
    """Plan the sample size for ``power`` from the true effect and a pilot's spread (after CUPED), then run."""
    effect = loop.streams_effect(better, control)
    pilot = loop.run(two_variants("pilot", 20_000), "x", {"control": control, "treatment": better}, 20_000)
    c = compare(pilot.sample("streams", "control"), pilot.sample("streams", "treatment"))
    sd = c.se / np.sqrt(1 / c.n_control + 1 / c.n_treatment)
    planned = 2 * sample_size(effect, sd, alpha=0.05, power=power, looks=LOOKS)
    shipped = 0
    for i in range(runs):
        exp = two_variants(f"ab-{i}", planned)
        out = loop.run(exp, "x", {"control": control, "treatment": better}, planned)
        shipped += run_sequential(exp, out, planned).verdict == SHIP
    return ABRun(runs, effect, c.diff, planned, shipped / runs, power)


@dataclass
class SRMRun:
    healthy_p: float
    broken_p: float
    broken_verdict: str


def srm_check(loop: ExperimentLoop, listeners: int = 20_000, lost: float = 0.1) -> SRMRun:
    """The same experiment healthy, then with ``lost`` of the treatment's exposure logs dropped."""
    exp, same = two_variants("srm", listeners), Policy(0.3)
    healthy = loop.run(exp, "x", {"control": same, "treatment": same}, listeners)
    broken = loop.run(exp, "x", {"control": same, "treatment": same}, listeners, lose_exposure={"treatment": lost})
    ok = evaluate(exp, "x", healthy.sample, healthy.counts(), [1.0])
    bad = evaluate(exp, "x", broken.sample, broken.counts(), [1.0])
    return SRMRun(ok.sample_ratio["p_value"], bad.sample_ratio["p_value"], bad.verdict)


@dataclass
class OPERun:
    truth: float
    logging_value: float
    coverage: dict[str, float]
    width: dict[str, float]  # mean 95 % interval width


def ope_coverage(loop: ExperimentLoop, repeats: int = 60, requests: int = 2000, epsilon: float = 0.3,
                 logging: Policy = Policy(0.5), target: Policy = Policy(0.05)) -> OPERun:  # fmt: skip
    """Logs with ``epsilon`` shuffle exploration; IPS, SNIPS and DR of a better re-ranker against its true value
    (run on 100,000 fresh requests). DR's reward model: per position, a line in the logging ranker's score."""
    truth = policy_value(loop, 100_000, logging, target)
    logged = policy_value(loop, 100_000, logging, logging)
    k = loop.list_size
    covered = dict.fromkeys(("ips", "snips", "dr"), 0)
    widths = dict.fromkeys(covered, 0.0)
    for _ in range(repeats):
        s = slates(loop, requests, logging, target, epsilon=epsilon)
        rows = np.arange(len(s.reward))
        x = np.zeros((len(s.reward), 2 * k))
        x[rows, s.positions], x[rows, k + s.positions] = 1.0, s.logging_score
        beta, *_ = np.linalg.lstsq(x, s.reward, rcond=None)
        direct = (beta[:k] + beta[k:] * s.target_score_rows).sum(axis=1)
        found = estimate(s.requests, s.reward, s.logging, s.target, predicted=x @ beta, direct=direct)
        for method, e in found.items():
            covered[method] += e.covers(truth)
            widths[method] += (e.high - e.low) / repeats
    return OPERun(truth, logged, {m: c / repeats for m, c in covered.items()}, widths)
