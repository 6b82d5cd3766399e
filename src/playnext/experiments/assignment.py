"""Deterministic assignment by salted hash of the listener id.

A listener's position in a layer is ``BLAKE2b(layer salt, user id)`` read as a number in [0, 1): the same listener
always lands in the same place, positions are uniform, and layers hash with different salts, so positions in one
layer say nothing about another. Running experiments of a layer take consecutive ranges of it in name order (their
``traffic``); a second hash, salted with the experiment, picks the variant by its shares. The global holdout is
the first ``holdout_share`` of a position hashed with its own salt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from playnext.experiments.definitions import Experiment

HOLDOUT_SALT = "playnext-holdout"


def position(salt: str, user_id: str) -> float:
    digest = hashlib.blake2b(f"{salt}\x1f{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Assignment:
    experiment: str
    variant: str

    @property
    def label(self) -> str:
        return f"{self.experiment}:{self.variant}"


class Assigner:
    def __init__(self, experiments: dict[str, Experiment], holdout_share: float = 0.0,
                 ramp: dict[str, float] | None = None) -> None:  # fmt: skip
        """``ramp``: the share of its traffic each ramping experiment takes now (see ``experiments.ramp``). An
        experiment keeps its whole range of the layer and fills it from the bottom, so ramping up only adds
        listeners (nobody changes variant) and never shifts another experiment of the layer."""
        self.holdout_share = holdout_share
        self.ramp = ramp or {}
        self.experiments = {name: exp for name, exp in experiments.items() if exp.running}
        self.layers: dict[str, list[tuple[str, Experiment]]] = {}
        for name in sorted(experiments):
            if experiments[name].running:
                self.layers.setdefault(experiments[name].layer, []).append((name, experiments[name]))

    def in_holdout(self, user_id: str) -> bool:
        return self.holdout_share > 0 and position(HOLDOUT_SALT, user_id) < self.holdout_share

    def assign(self, user_id: str) -> list[Assignment]:
        """The listener's variant in each layer where an experiment takes them; none in the global holdout."""
        if not self.layers or self.in_holdout(user_id):
            return []
        out = []
        for layer, experiments in sorted(self.layers.items()):
            at, start = position(f"layer\x1f{layer}", user_id), 0.0
            for name, exp in experiments:
                if start <= at < start + exp.traffic * self.ramp.get(name, 1.0):
                    pick, edge = position(f"experiment\x1f{name}\x1f{exp.salt}", user_id), 0.0
                    variants = sorted(exp.variants.items())
                    chosen = variants[-1][0]  # rounding: the last variant takes what the shares leave
                    for variant, spec in variants:
                        edge += spec.share
                        if pick < edge:
                            chosen = variant
                            break
                    out.append(Assignment(name, chosen))
                    break
                start += exp.traffic
        return out
