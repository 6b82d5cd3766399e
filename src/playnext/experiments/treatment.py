"""What a listener's variants change: surface parameters and the model version they are served.

Variants may only set the parameters listed in ``definitions.SURFACE_PARAMS`` (checked when settings load, with
the allowed range), so a typo in a definition is a configuration error rather than a silent A/A test. When
experiments of two layers set the same parameter, the layer first by name wins; layers are meant to change
different things.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from playnext.experiments.assignment import Assigner, Assignment


@dataclass(frozen=True)
class Treatment:
    label: str | None  # "experiment:variant" per layer, joined by ","; None outside every experiment
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_version: str | None = None

    def of(self, surface: str) -> dict[str, Any]:
        return self.params.get(surface, {})

    def key(self, surface: str) -> str:
        """The surface's parameters as stored beside a precomputed list: "" for the defaults."""
        values = self.of(surface)
        return json.dumps(values, sort_keys=True, separators=(",", ":")) if values else ""


CONTROL = Treatment(label=None)


class Treatments:
    """Listener id -> Treatment, from the running experiments' assignment."""

    def __init__(self, assigner: Assigner) -> None:
        self.assigner = assigner

    def of(self, user_id: str) -> Treatment:
        assigned = self.assigner.assign(user_id)
        if not assigned:
            return CONTROL
        return self.combine(assigned)

    def combine(self, assigned: list[Assignment]) -> Treatment:
        params: dict[str, dict[str, Any]] = {}
        model_version = None
        for a in assigned:  # layer order, so the first layer's setting stays
            variant = self.assigner.experiments[a.experiment].variants[a.variant]
            for surface, values in variant.params.items():
                for name, value in values.items():
                    params.setdefault(surface, {}).setdefault(name, value)
            model_version = model_version or variant.model_version
        return Treatment(",".join(a.label for a in assigned), params, model_version)
