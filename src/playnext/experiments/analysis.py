"""``playnext experiment analyze``: per metric the effect with a repeated confidence interval, CUPED, the sample
ratio check, and the decision rule that turns them into ship / no-ship / keep running.

The decision rule, per treatment against control:
- a sample ratio mismatch blocks every verdict: the split itself is broken, so no effect can be trusted;
- **no-ship** when a success metric is significantly worse, or a guardrail is significantly worse than its margin;
- **ship** when a success metric is significantly better and every guardrail is shown to be within its margin;
- otherwise **keep running**, until the planned sample size is reached, where it becomes **no-ship** (no proven
  improvement, or guardrails not shown to hold).
Success metrics share alpha (Bonferroni over success metrics and treatments); guardrails are one-sided
non-inferiority tests at alpha each. Every interval is a repeated confidence interval from the group sequential
boundary of the current look, so it stays valid however often the experiment is analysed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scipy import stats

from playnext.config import Settings
from playnext.durable import atomic_write
from playnext.experiments.definitions import Experiment
from playnext.experiments.metrics import METRICS, listener_metrics, metric
from playnext.experiments.statistics import Sample, SampleRatio, boundaries, compare, sample_ratio

SHIP, NO_SHIP, KEEP_RUNNING, BLOCKED = "ship", "no-ship", "keep running", "blocked"


class UnknownExperiment(ValueError):
    pass


@dataclass
class MetricResult:
    metric: str
    variant: str
    role: str  # success | guardrail | secondary
    control: float
    treatment: float
    diff: float
    relative: float
    ci: tuple[float, float]  # of diff, at the look's boundary
    ci_relative: tuple[float, float]
    boundary: float  # the |z| to cross at this look
    z: float
    p_value: float  # nominal, for reading only: the decision uses the boundary
    variance_reduction: float
    significant: bool
    better: bool | None  # None unless significant
    margin: float | None = None
    non_inferior: bool | None = None  # guardrails: the whole interval is within the margin
    beyond_margin: bool | None = None  # guardrails: the whole interval is worse than the margin


@dataclass
class Analysis:
    experiment: str
    control: str
    listeners: dict[str, int]
    sample_ratio: dict[str, Any]
    look: int
    fraction: float | None  # of the planned sample size; None: fixed horizon
    final: bool
    verdict: str
    variant: str | None  # the variant to ship, with verdict "ship"
    reasons: list[str]
    results: list[MetricResult]
    conflicting: int = 0
    as_of: str = ""
    looks: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain values, with undefined numbers (a relative effect on a zero control) as None: JSON has no NaN."""
        return _finite(asdict(self))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _worse_relative(rel: tuple[float, float], higher_is_better: bool) -> tuple[float, float]:
    """The interval of relative worsening (positive = worse), whichever direction the metric prefers."""
    lo, hi = rel
    return (-hi, -lo) if higher_is_better else (lo, hi)


def _result(name: str, variant: str, role: str, control: Sample, treatment: Sample, z_bound: float,
            cuped: bool, margin: float | None = None) -> MetricResult:  # fmt: skip
    c = compare(control, treatment, cuped=cuped)
    up = metric(name).higher_is_better
    significant = c.se > 0 and abs(c.z) >= z_bound
    ci, ci_rel = c.interval(z_bound), c.interval(z_bound, relative=True)
    result = MetricResult(
        metric=name, variant=variant, role=role, control=c.control, treatment=c.treatment, diff=c.diff,
        relative=c.relative, ci=ci, ci_relative=ci_rel, boundary=z_bound, z=c.z,
        p_value=float(2 * stats.norm.sf(abs(c.z))), variance_reduction=c.variance_reduction,
        significant=bool(significant), better=bool((c.diff > 0) == up) if significant else None, margin=margin,
    )  # fmt: skip
    if margin is not None:
        worse_lo, worse_hi = _worse_relative(ci_rel, up)
        result.non_inferior = bool(worse_hi < margin)
        result.beyond_margin = bool(worse_lo > margin)
    return result


def evaluate(
    exp: Experiment,
    name: str,
    sample: Callable[[str, str], Sample],
    listeners: dict[str, int],
    fractions: list[float],
    *,
    secondary: list[str] | None = None,
    cuped: bool = True,
) -> Analysis:
    """The verdict from per-variant samples at a look whose information fractions so far are ``fractions`` (the
    last is this look; ``[1.0]`` for a fixed-horizon analysis)."""
    srm: SampleRatio = sample_ratio(listeners, {v: spec.share for v, spec in exp.variants.items()})
    control, treatments = exp.control_variant, exp.treatments
    final = fractions[-1] >= 1.0
    n_success = max(1, len(exp.success_metrics) * len(treatments))
    z_success = boundaries(fractions, exp.alpha / n_success)[-1]
    z_guard = boundaries(fractions, 2 * exp.alpha)[-1]  # one-sided at alpha
    z_other = boundaries(fractions, exp.alpha)[-1]
    results: list[MetricResult] = []
    reasons: list[str] = []
    verdicts: dict[str, str] = {}
    enough = all(listeners.get(v, 0) >= 2 for v in exp.variants)
    for variant in treatments if enough else []:
        mine = []
        for m in exp.success_metrics:
            mine.append(_result(m, variant, "success", sample(m, control), sample(m, variant), z_success, cuped))
        for g in exp.guardrails:
            mine.append(_result(g.metric, variant, "guardrail", sample(g.metric, control), sample(g.metric, variant),
                                z_guard, cuped, margin=g.margin))  # fmt: skip
        for m in secondary or []:
            if m not in exp.success_metrics and m not in {g.metric for g in exp.guardrails}:
                mine.append(_result(m, variant, "secondary", sample(m, control), sample(m, variant), z_other, cuped))
        results += mine
        wins = [r.metric for r in mine if r.role == "success" and r.better is True]
        losses = [r.metric for r in mine if r.role == "success" and r.better is False]
        broken = [r.metric for r in mine if r.role == "guardrail" and r.beyond_margin]
        unproven = [r.metric for r in mine if r.role == "guardrail" and not r.non_inferior]
        if losses or broken:
            verdicts[variant] = NO_SHIP
            if losses:
                reasons.append(f"{variant}: {', '.join(losses)} significantly worse")
            if broken:
                reasons.append(f"{variant}: guardrail {', '.join(broken)} worse than its margin")
        elif wins and not unproven:
            verdicts[variant] = SHIP
            reasons.append(f"{variant}: {', '.join(wins)} significantly better, every guardrail within its margin")
        elif final:
            verdicts[variant] = NO_SHIP
            why = "no success metric improved significantly" if not wins else f"guardrails {unproven} not shown"
            reasons.append(f"{variant}: planned sample size reached; {why}")
        else:
            verdicts[variant] = KEEP_RUNNING
            reasons.append(f"{variant}: not conclusive yet ({fractions[-1]:.0%} of the planned sample size)")
    if srm.mismatch:
        verdict, chosen = BLOCKED, None
        reasons.insert(0, f"sample ratio mismatch (chi-square p = {srm.p_value:.2g}): the split is broken, "
                          "no effect can be trusted until the cause is found")  # fmt: skip
    elif not enough:
        verdict, chosen = KEEP_RUNNING, None
        reasons.append("every variant needs at least two exposed listeners")
    else:
        shipping = [v for v, verdict in verdicts.items() if verdict == SHIP]
        if shipping:
            first = exp.success_metrics[0] if exp.success_metrics else None
            key = {r.variant: r.relative for r in results if r.metric == first and r.role == "success"}
            chosen = max(shipping, key=lambda v: key.get(v, 0.0))
            verdict = SHIP
        else:
            chosen = None
            verdict = KEEP_RUNNING if KEEP_RUNNING in verdicts.values() else NO_SHIP
    return Analysis(
        experiment=name, control=control, listeners=dict(listeners),
        sample_ratio={"chi2": srm.chi2, "p_value": srm.p_value, "mismatch": srm.mismatch,
                      "expected_shares": srm.expected_shares},
        look=len(fractions), fraction=None if fractions == [1.0] and exp.planned_sample_size is None
        else fractions[-1], final=final, verdict=verdict, variant=chosen, reasons=reasons, results=results,
    )  # fmt: skip


# --- looks and persistence --------------------------------------------------------------------------------------


def experiment_dir(settings: Settings, name: str) -> Path:
    return settings.experiments_dir / name


class BrokenState(ValueError):
    pass


def load_state(path: Path) -> dict[str, Any]:
    """An experiment's looks, ramp or last analysis; {} before the first."""
    try:
        return parse_state(path.read_bytes(), path)
    except FileNotFoundError:
        return {}


def parse_state(raw: bytes, path: Path) -> dict[str, Any]:
    """Written atomically, so a file that does not parse was edited by hand: say which, rather than start the
    sequential test or the ramp over silently."""
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BrokenState(f"{path} is not valid JSON ({exc}); restore it or delete it to start over") from None
    if not isinstance(value, dict):
        raise BrokenState(f"{path} does not hold a JSON object; restore it or delete it to start over")
    return value


def save_state(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(_finite(value), indent=1, sort_keys=True, default=str, allow_nan=False).encode())


def _fractions(looks: list[dict[str, Any]], fraction: float, listeners: int) -> list[float]:
    """Information fractions of the recorded looks plus this one; a look with no new listeners is the last one
    again, not a new look (so re-running an analysis does not cost alpha)."""
    past = [float(look["fraction"]) for look in looks]
    if looks and listeners <= int(looks[-1]["listeners"]):
        return past
    if past and past[-1] >= 1.0:
        return past
    fraction = min(fraction, 1.0)
    if past and fraction <= past[-1]:
        return past
    return [*past, fraction]


def analyze(
    settings: Settings,
    name: str,
    *,
    as_of: dt.datetime | None = None,
    record: bool = True,
    cuped: bool = True,
    secondary: bool = True,
) -> Analysis:
    """Analyse experiment ``name`` from the lake as of ``as_of`` (now); with ``record``, this counts as a look."""
    if name not in settings.experiments:
        known = ", ".join(sorted(settings.experiments)) or "none"
        raise UnknownExperiment(f"no experiment {name!r} is configured (configured: {known})")
    exp = settings.experiments[name]
    as_of = as_of or dt.datetime.now(dt.UTC)
    names = list(dict.fromkeys([*exp.success_metrics, *(g.metric for g in exp.guardrails),
                                *(METRICS if secondary else [])]))  # fmt: skip
    data = listener_metrics(settings, name, names, as_of, exp.pre_days)
    counts = data.counts()
    listeners = {v: counts.get(v, 0) for v in exp.variants}
    unknown = sorted(set(counts) - set(exp.variants))
    total = sum(listeners.values())
    directory = experiment_dir(settings, name)
    state = load_state(directory / "looks.json")
    looks = state.get("looks", []) if state.get("salt") == exp.salt else []
    planned = exp.planned_sample_size
    fractions = _fractions(looks, total / planned, total) if planned else [1.0]
    cache: dict[tuple[str, str], Sample] = {}

    def sample(m: str, v: str) -> Sample:
        if (m, v) not in cache:
            cache[(m, v)] = data.sample(m, v)
        return cache[(m, v)]

    result = evaluate(exp, name, sample, listeners, fractions, secondary=list(METRICS) if secondary else None,
                      cuped=cuped)  # fmt: skip
    result.conflicting = data.conflicting
    result.as_of = as_of.isoformat()
    if unknown:
        result.reasons.append(f"impressions name variants that are not configured: {', '.join(unknown)}")
    if data.conflicting:
        result.reasons.append(f"{data.conflicting} listeners were shown more than one variant and are left out")
    if exp.planned_sample_size is None:
        result.reasons.append("no planned sample size: a fixed-horizon test, so repeated looks inflate false positives")
    summary = {
        "at": result.as_of, "listeners": total, "fraction": fractions[-1], "verdict": result.verdict,
        "effects": {f"{r.variant}/{r.metric}": [r.relative, *r.ci_relative] for r in result.results},
    }  # fmt: skip
    new_look = exp.planned_sample_size is not None and len(fractions) > len(looks)
    result.looks = [*looks, summary] if new_look else looks
    if record:
        if new_look:
            save_state(directory / "looks.json", {"salt": exp.salt, "looks": result.looks})
        save_state(directory / "analysis.json", result.to_json())
    return result


def latest_analysis(settings: Settings, name: str) -> dict[str, Any] | None:
    """The last recorded analysis of ``name`` (what the dashboard and ``/metrics`` show), or None."""
    found = load_state(experiment_dir(settings, name) / "analysis.json")
    return found or None
