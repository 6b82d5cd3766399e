"""Rollout: an experiment's traffic goes up its ramp (``Experiment.ramp``, e.g. 1% → 5% → 25% → 50% → 100%) one
stage per ``playnext experiment ramp NAME``, and only while its guardrails hold.

Each step analyses the experiment (a look of the sequential test) and then:
- **halts** (traffic 0: everyone back on the default experience) when the split is broken (sample ratio
  mismatch), a guardrail is significantly worse than its margin, or a success metric is significantly worse;
- **holds** while the current stage has fewer than ``min_listeners`` exposed listeners: too little to judge;
- **advances** to the next stage otherwise.
The state is a small JSON file per experiment that serving re-reads within a second (``LiveTreatments``), so a
ramp or a halt needs no restart. An experiment that was never ramped runs at its full ``traffic``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playnext.config import Settings
from playnext.durable import ReadWhenChanged
from playnext.experiments.analysis import (
    Analysis,
    BrokenState,
    UnknownExperiment,
    analyze,
    experiment_dir,
    load_state,
    parse_state,
    save_state,
)
from playnext.experiments.assignment import Assigner
from playnext.experiments.treatment import Treatment, Treatments

log = logging.getLogger(__name__)
RAMPING, HALTED, COMPLETE = "ramping", "halted", "complete"


@dataclass
class RampStep:
    action: str  # started | advanced | held | halted | complete
    share: float
    reasons: list[str]
    analysis: Analysis | None
    history: list[dict[str, Any]]


def ramp_file(settings: Settings, name: str) -> Path:
    return experiment_dir(settings, name) / "ramp.json"


def _share(state: dict[str, Any]) -> float | None:
    """The share of its traffic a ramp state gives (halted: 0); None when never ramped (full traffic)."""
    if not state:
        return None
    return 0.0 if state["status"] == HALTED else float(state["share"])


def _share_of(path: Path, name: str) -> Callable[[bytes], float | None]:
    def parse(raw: bytes) -> float | None:
        try:
            return _share(parse_state(raw, path))
        except BrokenState as exc:  # serving goes on; nobody is exposed to a ramp of unknown state
            log.error("experiment %s is stopped: %s", name, exc)
            return 0.0

    return parse


def current_shares(settings: Settings) -> dict[str, float]:
    """Share of its traffic each ramped experiment takes now (halted: 0). An unreadable ramp file stops the
    experiment (share 0) and is logged."""
    found = {}
    for name in settings.experiments:
        path = ramp_file(settings, name)
        try:
            share = _share_of(path, name)(path.read_bytes())
        except FileNotFoundError:
            share = None
        if share is not None:
            found[name] = share
    return found


def ramp_step(settings: Settings, name: str, *, min_listeners: int = 100, as_of: dt.datetime | None = None) -> RampStep:
    exp = settings.experiments.get(name)
    if exp is None:
        raise UnknownExperiment(f"no experiment {name!r} is configured")
    path = ramp_file(settings, name)
    state = load_state(path)
    if not state:
        state = {"stage": 0, "share": exp.ramp[0], "status": RAMPING, "history": []}
        save_state(path, state)
        return RampStep("started", exp.ramp[0], [f"started at {exp.ramp[0]:.0%} of its traffic"], None, [])
    if state["status"] != RAMPING:
        return RampStep(state["status"], state["share"], [f"the ramp is {state['status']}"], None, state["history"])
    result = analyze(settings, name, as_of=as_of)
    exposed = sum(result.listeners.values())
    at_stage = exposed - sum(int(h["listeners_added"]) for h in state["history"])
    guards = [r for r in result.results if r.role == "guardrail"]
    broken = [f"{r.variant}: guardrail {r.metric} worse than its {r.margin:.0%} margin" for r in guards
              if r.beyond_margin]  # fmt: skip
    losses = [f"{r.variant}: {r.metric} significantly worse" for r in result.results
              if r.role == "success" and r.better is False]  # fmt: skip
    if result.sample_ratio["mismatch"]:
        broken.insert(0, f"sample ratio mismatch (p = {result.sample_ratio['p_value']:.2g})")
    entry = {
        "at": result.as_of, "stage": state["stage"], "share": state["share"], "listeners": exposed,
        "listeners_added": at_stage, "verdict": result.verdict,
        "effects": {f"{r.variant}/{r.metric}": [r.relative, *r.ci_relative] for r in result.results
                    if r.role != "secondary"},
    }  # fmt: skip
    if broken or losses:
        action, reasons = "halted", broken + losses
        state["status"], entry["action"] = HALTED, action
    elif at_stage < min_listeners:
        action, reasons = "held", [f"{at_stage} listeners exposed at this stage; {min_listeners} needed to judge it"]
        save_state(path, state)
        return RampStep(action, state["share"], reasons, result, state["history"])
    elif state["stage"] + 1 >= len(exp.ramp):
        action, reasons = "complete", ["guardrails held at every stage; the experiment runs at its full traffic"]
        state["status"], entry["action"] = COMPLETE, action
    else:
        action = "advanced"
        state["stage"] += 1
        state["share"] = exp.ramp[state["stage"]]
        reasons = [f"guardrails hold: up to {state['share']:.0%} of its traffic"]
        entry["action"] = action
    state["history"].append(entry)
    save_state(path, state)
    return RampStep(action, 0.0 if action == "halted" else state["share"], reasons, result, state["history"])


class LiveTreatments(Treatments):
    """Treatments that follow the ramp files: checked at most once per ``check_s``, each file read again only
    when it changed (``durable.ReadWhenChanged``), the assignment rebuilt only when a share moved."""

    def __init__(self, settings: Settings, check_s: float = 1.0) -> None:
        self.settings, self.check_s = settings, check_s
        self._files = {
            name: ReadWhenChanged(ramp_file(settings, name), _share_of(ramp_file(settings, name), name), lambda: None)
            for name in settings.experiments
        }
        self._checked = 0.0
        self._shares = self._read()
        super().__init__(self._assigner())

    def _read(self) -> dict[str, float]:
        return {name: share for name, file in self._files.items() if (share := file.get()) is not None}

    def _assigner(self) -> Assigner:
        s = self.settings
        return Assigner(s.experiments, s.experiment_holdout_share, self._shares)

    def of(self, user_id: str) -> Treatment:
        now = time.monotonic()
        if self._files and now - self._checked > self.check_s:
            self._checked = now
            shares = self._read()
            if shares != self._shares:
                self._shares = shares
                self.assigner = self._assigner()
        return super().of(user_id)
