"""Rewards as data: a named weighting of what followed an impression, stored as immutable numbered versions.

The same definition labels the ranker's training data and measures experiments, so "what we optimise" and "what
we report" cannot drift apart. A definition lives in settings (``[rewards.NAME]``); registering it writes
``rewards/NAME/vN.json`` unless the newest version already has the same weights. Changing the weights therefore
makes version N+1, and every model and analysis records the exact version it used. Versions are never rewritten.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from playnext.config import RewardSettings, Settings
from playnext.durable import atomic_write, fsync_dir

OUTCOME_COLUMNS = ("streamed", "saved", "skipped", "returned", "ms_played")


class UnknownReward(ValueError):
    pass


@dataclass(frozen=True)
class Reward:
    name: str
    version: int
    weights: RewardSettings

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"

    def value(self, outcomes: pa.Table) -> np.ndarray:
        """The reward of each row of an ``outcomes``-shaped table."""
        missing = [c for c in OUTCOME_COLUMNS if c not in outcomes.column_names]
        if missing:
            raise ValueError(f"outcomes lack the columns {', '.join(missing)}")
        w = self.weights

        def flag(name: str) -> np.ndarray:
            return np.asarray(outcomes[name].to_numpy(zero_copy_only=False), dtype=float)

        minutes = np.minimum(
            np.asarray(outcomes["ms_played"].to_numpy(zero_copy_only=False), float) / 60_000.0, w.minutes_cap
        )
        return (
            w.streamed * flag("streamed")
            + w.saved * flag("saved")
            + w.skipped * flag("skipped")
            + w.returned * flag("returned")
            + w.minutes * minutes
        )

    def relevance(self, outcomes: pa.Table) -> np.ndarray:
        """Integer grades for learning to rank: rewards at or below 0 are 0, the rest round up (at most 30)."""
        return np.clip(np.ceil(self.value(outcomes)), 0, 30).astype(np.int32)


def _versions(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    return sorted(int(p.stem[1:]) for p in directory.glob("v*.json") if p.stem[1:].isdigit())


def register_reward(settings: Settings, name: str) -> Reward:
    """The current version of the configured reward ``name``, registering a new one if the weights changed."""
    if name not in settings.rewards:
        raise UnknownReward(f"unknown reward {name!r}; configured: {', '.join(sorted(settings.rewards))}")
    weights = settings.rewards[name]
    directory = settings.rewards_dir / name
    versions = _versions(directory)
    if versions:
        latest = load_reward(settings, name, versions[-1])
        if latest.weights == weights:
            return latest
    version = (versions[-1] if versions else 0) + 1
    directory.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"name": name, "version": version, "weights": weights.model_dump()}, indent=2, sort_keys=True)
    staged = directory / f".v{version}.{os.getpid()}.tmp"
    atomic_write(staged, body.encode())
    try:
        os.link(staged, directory / f"v{version}.json")  # fails if another run took this number first
    except FileExistsError:
        return register_reward(settings, name)  # re-read: the other run's version may be these very weights
    finally:
        staged.unlink(missing_ok=True)
    fsync_dir(directory)
    return Reward(name=name, version=version, weights=weights)


def load_reward(settings: Settings, name: str, version: int) -> Reward:
    path = settings.rewards_dir / name / f"v{version}.json"
    if not path.is_file():
        raise UnknownReward(f"reward {name}@v{version} was never registered ({path} is missing)")
    raw = json.loads(path.read_text())
    return Reward(name=name, version=version, weights=RewardSettings(**raw["weights"]))


def list_rewards(settings: Settings) -> list[Reward]:
    out = []
    root = settings.rewards_dir
    for directory in sorted(root.iterdir()) if root.is_dir() else []:
        out += [load_reward(settings, directory.name, v) for v in _versions(directory)]
    return out
