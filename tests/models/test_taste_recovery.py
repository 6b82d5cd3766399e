"""On the simulator, whose tastes are known because we drew them, models must recover them."""

from __future__ import annotations

import numpy as np
import pytest

from playnext.config import Settings
from playnext.synth.simulate import simulate
from playnext.synth.world import WorldParams, load_world


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("sim") / "data")
    simulate(settings, WorldParams(users=300, tracks=600, days=14, seed=11))
    return settings


def test_recommendations_match_the_hidden_tastes_far_above_chance(sim: Settings) -> None:
    from playnext.models.training import train

    settings = sim.model_copy(update={"models": sim.models.model_copy(update={
        "generators": ["popularity", "als", "ease", "cooccurrence"]})})  # fmt: skip
    run = train(settings)
    world, data = load_world(sim.synth_dir), run.data
    tracks = np.flatnonzero(data.meta.item_type == "track")
    number = np.array(
        [int(i[1:]) if t == "track" else -1 for i, t in zip(data.items, data.meta.item_type, strict=True)]
    )
    users = np.arange(data.n_users)
    user_number = np.array([int(u[1:]) for u in data.users])
    rng = np.random.default_rng(0)
    chance = world.affinity(np.repeat(user_number, 10), number[rng.choice(tracks, size=len(users) * 10)]).mean()
    for name, model in [("recommender", run.recommender), ("als", run.recommender.generators["als"])]:
        got = model.recommend(users, 10).items
        ok = (got >= 0) & (number[np.maximum(got, 0)] >= 0)
        hidden = world.affinity(np.repeat(user_number, 10)[ok.ravel()], number[got.ravel()[ok.ravel()]]).mean()
        assert hidden > 1.4 * chance, (name, hidden, chance)
    # Item vectors put a track next to tracks of its own genre far more often than the 1 in 16 of chance.
    als = run.recommender.generators["als"]
    genre = data.meta.genre
    neighbours = als.similar_items(tracks, 5).items
    same = genre[neighbours] == genre[tracks][:, None]
    assert same.mean() > 0.4
