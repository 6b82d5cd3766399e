"""Rewards: the value of outcomes, and versions that are made, never rewritten."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from playnext.config import RewardSettings, Settings
from playnext.rewards.definitions import UnknownReward, list_rewards, load_reward, register_reward


def _outcomes() -> pa.Table:
    return pa.table({
        "streamed": [True, True, False, False], "saved": [False, True, False, False],
        "skipped": [False, False, True, False], "returned": [False, True, False, False],
        "ms_played": [60_000, 1_200_000, 5_000, 0],
    })  # fmt: skip


def test_the_default_engagement_reward_weights_each_outcome(settings: Settings) -> None:
    reward = register_reward(settings, "engagement")
    assert reward.ref == "engagement@v1"
    assert reward.value(_outcomes()).tolist() == [1.0, 3.5, -1.0, 0.0]
    assert reward.relevance(_outcomes()).tolist() == [1, 4, 0, 0]


def test_minutes_are_capped(settings: Settings) -> None:
    s = settings.model_copy(update={"rewards": {"m": RewardSettings(streamed=0, minutes=1.0, minutes_cap=10)}})
    assert register_reward(s, "m").value(_outcomes()).tolist() == pytest.approx([1.0, 10.0, 5 / 60, 0.0])


def test_same_weights_keep_the_version_and_new_weights_make_a_new_one(settings: Settings) -> None:
    v1 = register_reward(settings, "engagement")
    assert register_reward(settings, "engagement").version == 1
    before = (settings.rewards_dir / "engagement" / "v1.json").read_bytes()
    changed = settings.model_copy(update={"rewards": {**settings.rewards, "engagement": RewardSettings(saved=5)}})
    v2 = register_reward(changed, "engagement")
    assert v2.version == 2 and v2.weights.saved == 5
    assert (settings.rewards_dir / "engagement" / "v1.json").read_bytes() == before  # never rewritten
    assert load_reward(settings, "engagement", 1).weights == v1.weights
    assert [r.ref for r in list_rewards(settings)] == ["engagement@v1", "engagement@v2"]
    assert json.loads((settings.rewards_dir / "engagement" / "v2.json").read_text())["weights"]["saved"] == 5


def test_unknown_rewards_and_missing_columns_are_clear_errors(settings: Settings) -> None:
    with pytest.raises(UnknownReward, match="unknown reward 'nope'"):
        register_reward(settings, "nope")
    with pytest.raises(UnknownReward, match="never registered"):
        load_reward(settings, "engagement", 7)
    with pytest.raises(ValueError, match="lack the columns"):
        register_reward(settings, "engagement").value(pa.table({"streamed": [True]}))


def test_configured_rewards_add_to_the_built_in_ones() -> None:
    s = Settings(rewards={"mine": RewardSettings(saved=1)})
    assert {"mine", "engagement", "long_term"} <= set(s.rewards)


def test_a_version_number_taken_by_another_run_is_never_overwritten(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playnext.rewards import definitions

    register_reward(settings, "engagement")
    other = settings.rewards_dir / "engagement" / "v2.json"
    other.write_text(json.dumps({"name": "engagement", "version": 2, "weights": RewardSettings(saved=9).model_dump()}))
    real = definitions._versions
    stale = iter([[1]])  # our run listed the versions before the other run wrote v2
    monkeypatch.setattr(definitions, "_versions", lambda d: next(stale, None) or real(d))
    mine = settings.model_copy(update={"rewards": {**settings.rewards, "engagement": RewardSettings(saved=5)}})
    got = register_reward(mine, "engagement")
    assert got.version == 3 and got.weights.saved == 5
    assert json.loads(other.read_text())["weights"]["saved"] == 9
    assert not list((settings.rewards_dir / "engagement").glob(".*tmp"))
