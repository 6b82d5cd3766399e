"""Experiments as configuration: ``[experiments.NAME]`` in playnext.toml (or ``PLAYNEXT_EXPERIMENTS``).

An experiment lives in a layer; experiments of one layer split that layer's traffic between them (mutually
exclusive), experiments of different layers are assigned independently. ``holdout_share`` of all listeners (the
global holdout) is kept out of every experiment.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from playnext.experiments.metrics import metric

# surface -> parameter -> (type, lowest, highest)
SURFACE_PARAMS: dict[str, dict[str, tuple[type, float, float]]] = {
    "discover-weekly": {"per_artist": (int, 1, 30)},
    "daily-mix": {"min_tracks": (int, 1, 50)},
}


def check_params(params: dict[str, dict[str, Any]]) -> None:
    for surface, values in params.items():
        if surface not in SURFACE_PARAMS:
            raise ValueError(f"variants cannot change {surface!r}; surfaces with parameters: "
                             f"{', '.join(SURFACE_PARAMS)}")  # fmt: skip
        for name, value in values.items():
            if name not in SURFACE_PARAMS[surface]:
                raise ValueError(f"{surface} has no parameter {name!r}; it has: {', '.join(SURFACE_PARAMS[surface])}")
            kind, low, high = SURFACE_PARAMS[surface][name]
            if not isinstance(value, kind) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"{surface}.{name} must be a {kind.__name__} in [{low:g}, {high:g}], got {value!r}")


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    share: float = Field(gt=0, le=1)
    # What the variant changes: surface parameters by surface ("discover-weekly": {"per_artist": 1}), or the model
    # version it is served. Recorded with every assignment; applying them is the surfaces' part.
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    model_version: str | None = None

    @model_validator(mode="after")
    def _known_params(self) -> Variant:
        check_params(self.params)
        return self


class Guardrail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str
    # The largest relative worsening tolerated (0.02: two percent) before the verdict is no-ship.
    margin: float = Field(ge=0)


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    layer: str = "default"
    # Share of the layer's traffic this experiment takes; experiments of one layer must fit in 1.0 together.
    traffic: float = Field(default=1.0, gt=0, le=1)
    variants: dict[str, Variant]
    success_metrics: list[str] = Field(default_factory=list)
    guardrails: list[Guardrail] = Field(default_factory=list)
    # Exposed listeners (all variants together) at which the experiment ends; each analysis is a look at the
    # share of it gathered so far. Without it every analysis is a fixed-horizon test, and repeated looks inflate
    # the false-positive rate.
    planned_sample_size: int | None = Field(default=None, gt=0)
    control: str | None = None  # default: the variant named "control", else the first by name
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    # Days before a listener's first exposure whose listening is the CUPED covariate.
    pre_days: float = Field(default=14.0, ge=0)
    # Shares of ``traffic`` the ramp goes through (``playnext experiment ramp``); the last is normally 1.0.
    ramp: list[float] = Field(default_factory=lambda: [0.01, 0.05, 0.25, 0.5, 1.0], min_length=1)
    running: bool = True
    # Changing the salt reshuffles who is in which variant: a new experiment, not a continuation.
    salt: str = ""

    @model_validator(mode="after")
    def _shares_add_up(self) -> Experiment:
        if len(self.variants) < 2:
            raise ValueError("an experiment needs at least two variants (a control and a treatment)")
        total = sum(v.share for v in self.variants.values())
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"variant shares add up to {total:g}, not 1")
        if self.control is not None and self.control not in self.variants:
            raise ValueError(f"the control {self.control!r} is not one of the variants")
        if any(not 0 < share <= 1 for share in self.ramp) or self.ramp != sorted(self.ramp):
            raise ValueError("ramp stages are increasing shares in (0, 1]")
        for name in [*self.success_metrics, *(g.metric for g in self.guardrails)]:
            metric(name)
        return self

    @property
    def control_variant(self) -> str:
        if self.control is not None:
            return self.control
        return "control" if "control" in self.variants else sorted(self.variants)[0]

    @property
    def treatments(self) -> list[str]:
        return [v for v in sorted(self.variants) if v != self.control_variant]


LABEL_MAX = 64  # an impression's ``variant`` field: every layer's "experiment:variant", joined by ","
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def check_experiments(experiments: dict[str, Experiment]) -> None:
    """Names fit impressions, and running experiments of one layer do not claim more than all of its traffic."""
    for name, exp in experiments.items():
        for part in [name, *exp.variants]:
            if not NAME.match(part):
                raise ValueError(f"experiment and variant names are lowercase letters, digits, - and _: {part!r}")
    used: dict[str, float] = {}
    longest: dict[str, int] = {}
    for name, exp in experiments.items():
        if exp.running:
            used[exp.layer] = used.get(exp.layer, 0.0) + exp.traffic
            label = len(name) + 1 + max(len(v) for v in exp.variants)
            longest[exp.layer] = max(longest.get(exp.layer, 0), label)
    over = {layer: share for layer, share in used.items() if share > 1.0 + 1e-9}
    if over:
        raise ValueError(f"running experiments claim more than a layer's traffic: {over}")
    if sum(longest.values()) + len(longest) - 1 > LABEL_MAX:
        raise ValueError(f"the variant labels of all layers together exceed {LABEL_MAX} characters: use shorter names")
