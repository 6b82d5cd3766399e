"""The ranker learns from logged impressions when there are enough, with reward labels from their outcomes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from playnext.config import Settings
from playnext.events.lake_events import events_table, write_event_partitions
from playnext.events.schema import ARROW_SCHEMA, Event
from playnext.synth.respond import Listeners
from playnext.synth.simulate import simulate
from playnext.synth.world import WorldParams, load_world


def _append(settings: Settings, events: list[Event]) -> None:
    import msgspec

    rows = []
    for e in events:
        row = msgspec.to_builtins(e)
        row["ts"] = e.ts
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)
    lake = events_table(settings.lake_dir)
    lake.commit(add=write_event_partitions(lake, table, tag="served"))


@pytest.fixture(scope="module")
def served_world(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("served") / "data")
    params = WorldParams(users=200, tracks=300, days=10, seed=5, start=dt.date(2026, 10, 1))
    simulate(settings, params)
    world = load_world(settings.synth_dir)
    listeners = Listeners(world, seed=1)
    rng = np.random.default_rng(2)
    events: list[Event] = []
    first = dt.datetime(2026, 10, 9, tzinfo=dt.UTC)
    # Random lists over the last two simulated days, among organic listening, so the labels say what each
    # listener's taste makes of each shown item.
    for n in range(400):
        user = int(rng.integers(0, 200))
        items = [f"t{t}" for t in rng.choice(300, size=10, replace=False)]
        at = first + dt.timedelta(minutes=7 * n)
        events += listeners.respond_events(f"u{user}", items, request_id=f"r{n}", surface="home", at=at)
    _append(settings, events)
    return settings


def test_the_ranker_trains_on_impressions_and_ranks_liked_items_higher(served_world: Settings) -> None:
    from playnext.models.training import train

    s = served_world.model_copy(update={"models": served_world.models.model_copy(update={
        "generators": ["popularity", "als", "ease"], "ranker_label_share": 0.2})})  # fmt: skip
    run = train(s)
    info = run.ranker_info
    assert info["source"] == "interactions+impressions" and info["queries"] > 50 and info["positives"] > 0
    assert run.reward is not None and run.reward.ref == "engagement@v1"
    world, data = load_world(s.synth_dir), run.data
    users = np.arange(data.n_users)
    got = run.recommender.recommend(users, 10).items
    number = np.array(
        [int(i[1:]) if t == "track" else -1 for i, t in zip(data.items, data.meta.item_type, strict=True)]
    )
    user_number = np.array([int(u[1:]) for u in data.users])
    ok = (got >= 0) & (number[np.maximum(got, 0)] >= 0)
    hidden = world.affinity(np.repeat(user_number, 10)[ok.ravel()], number[got.ravel()[ok.ravel()]]).mean()
    rng = np.random.default_rng(0)
    chance = world.affinity(np.repeat(user_number, 10), rng.integers(0, 300, size=len(users) * 10)).mean()
    assert hidden > 1.3 * chance


def test_candidates_are_graded_by_the_listeners_best_event_on_the_item() -> None:
    import numpy as np

    from playnext.models.training import _grades_of_pairs

    users = np.array(["a", "b", "c"], dtype=object)  # sorted, as np.unique gives them
    events = (np.array(["b", "a", "b", "stranger", "b"], dtype=object), np.array([3, 1, 3, 0, 5]),
              np.array([1, 2, 3, 9, 1]))  # fmt: skip
    rows, items = np.array([0, 0, 1, 1, 1, 2]), np.array([1, 3, 3, 5, 1, 0])
    assert _grades_of_pairs(users, *events, rows, items, 10).tolist() == [2, 0, 3, 1, 0, 0]
    assert _grades_of_pairs(users[:0], *events, rows[:0], items[:0], 10).tolist() == []
