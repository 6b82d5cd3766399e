"""Experiments as configuration: ``[experiments.NAME]`` in playnext.toml (or ``PLAYNEXT_EXPERIMENTS``).

An experiment lives in a layer; experiments of one layer split that layer's traffic between them (mutually
exclusive), experiments of different layers are assigned independently. ``holdout_share`` of all listeners (the
global holdout) is kept out of every experiment.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    share: float = Field(gt=0, le=1)
    # What the variant changes: surface parameters by surface ("discover-weekly": {"per_artist": 1}), or the model
    # version it is served. Recorded with every assignment; applying them is the surfaces' part.
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    model_version: str | None = None


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
    planned_sample_size: int | None = Field(default=None, gt=0)
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
        return self


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
