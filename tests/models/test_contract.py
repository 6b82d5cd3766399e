"""The contract every candidate generator keeps (as scikit-learn's ``check_estimator``): a new generator is done
when it passes this module."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from playnext.index.ann import AnnIndexed
from playnext.models.base import CandidateModel, NotFitted
from playnext.models.blend import Blend
from playnext.models.generators import build_generator, load_generator
from playnext.models.recommender import Recommender
from tests.models.small import two_tastes

FAST = {"sasrec": {"epochs": 8, "dim": 16, "negatives": 16, "max_len": 10}, "als": {"factors": 8, "iterations": 10}}

FACTORIES: dict[str, Callable[[], CandidateModel]] = {
    name: (lambda name=name: build_generator(name, FAST.get(name)))
    for name in ["als", "ease", "rp3beta", "cooccurrence", "popularity", "popularity_country", "popularity_genre",
                 "trending", "content", "sasrec"]
}  # fmt: skip
FACTORIES["blend"] = lambda: Blend(
    {"ease": build_generator("ease"), "popularity": build_generator("popularity")}, {"popularity": 0.3}
)
FACTORIES["ann(als)"] = lambda: AnnIndexed(build_generator("als", FAST["als"]))
FACTORIES["recommender"] = lambda: Recommender(
    {"rp3beta": build_generator("rp3beta"), "ease": build_generator("ease")}, candidates_per_generator=10
)
PERSONAL = {"als", "content", "ease", "rp3beta", "cooccurrence", "popularity_genre", "blend", "ann(als)", "recommender"}


@pytest.fixture(scope="module")
def data():
    return two_tastes()


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def fitted(request, data):
    return request.param, FACTORIES[request.param]().fit(data)


def test_an_unfitted_generator_says_so(data) -> None:
    for name, factory in FACTORIES.items():
        if name in ("recommender", "blend"):
            continue
        with pytest.raises(NotFitted):
            factory().recommend(np.array([0]), 5)


def test_params_are_stored_unchanged_and_rebuild_the_model() -> None:
    for name in ["als", "ease", "rp3beta", "popularity", "sasrec", "content", "cooccurrence"]:
        model = build_generator(name, FAST.get(name))
        again = type(model)(**model.get_params())
        assert again.get_params() == model.get_params()


def test_recommend_returns_unseen_distinct_items_best_first(fitted, data) -> None:
    name, model = fitted
    users = np.arange(data.n_users)
    got = model.recommend(users, 5)
    assert got.items.shape == (data.n_users, 5) and got.scores.shape == (data.n_users, 5)
    for u in users:
        row = got.items[u][got.items[u] >= 0]
        assert len(row) == len(set(row.tolist())), name
        seen = set(data.matrix[u].indices.tolist())
        assert not seen & set(row.tolist()), f"{name} recommended a seen item"
        scores = got.scores[u][got.items[u] >= 0]
        assert np.all(np.diff(scores) <= 1e-5), f"{name} is not sorted best first"


def test_personal_generators_recommend_the_listeners_own_taste(fitted, data) -> None:
    name, model = fitted
    if name not in PERSONAL:
        pytest.skip("not personal")
    got = model.recommend(np.arange(data.n_users), 3)
    half_u, half_i = data.n_users // 2, data.n_items // 2
    own = np.where(np.arange(data.n_users)[:, None] < half_u, got.items < half_i, got.items >= half_i)
    assert own[got.items >= 0].mean() > 0.9, name


def test_a_listener_without_history_gets_an_answer(fitted, data) -> None:
    _, model = fitted
    got = model.recommend(np.array([-1, 0]), 4)
    assert got.items.shape == (2, 4)


def test_similar_items_never_return_the_item_itself(fitted, data) -> None:
    name, model = fitted
    items = np.arange(data.n_items)
    got = model.similar_items(items, 4)
    assert not (got.items == items[:, None]).any(), name


def test_score_agrees_with_the_dense_scores(fitted, data) -> None:
    _, model = fitted
    users = np.array([0, 1, 25, 0])
    items = np.array([3, 4, 20, 29])
    dense = model.user_scores(users)
    np.testing.assert_allclose(model.score(users, items), dense[np.arange(4), items], rtol=1e-4, atol=1e-5)


def test_save_then_load_gives_the_same_recommendations(fitted, data, tmp_path: Path) -> None:
    _, model = fitted
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m") if isinstance(model, Recommender) else load_generator(tmp_path / "m")
    loaded.use_history(data.matrix)
    users = np.arange(data.n_users)
    a, b = model.recommend(users, 5), loaded.recommend(users, 5)
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


def test_exclude_seen_false_may_return_history(data) -> None:
    model = build_generator("popularity").fit(data)
    got = model.recommend(np.arange(data.n_users), data.n_items, exclude_seen=False)
    assert (got.items >= 0).all()


def test_popularity_sorts_each_segment_once_per_fit(data) -> None:
    """Every listener of a segment shares one order: kept after the first request, dropped when fitted again."""
    model = build_generator("popularity_country").fit(data)
    users = np.arange(data.n_users)
    first = model.recommend(users, 8, exclude_seen=False)
    kept = dict(model._orders)
    assert kept and all(len(order) == data.n_items for order in kept.values())
    for segment, order in kept.items():  # a stable sort: ties in catalog order
        scores = model.segment_scores(np.array([segment]))[0]
        assert order.tolist() == np.argsort(-scores, kind="stable").tolist()
    again = model.recommend(users, 8, exclude_seen=False)
    assert (again.items == first.items).all() and all(model._orders[k] is kept[k] for k in kept)
    other = two_tastes(seed=3)
    model.fit(other)
    fresh = build_generator("popularity_country").fit(other)
    assert (model.recommend(users, 8).items == fresh.recommend(users, 8).items).all()


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("als", {"factors": "64"}, "'factors' of generator 'als' must be int"),
        ("ease", {"l2": True}, "'l2' of generator 'ease' must be float"),
        ("als", {"bogus": 1}, "unexpected keyword argument 'bogus'"),
        ("nope", {}, "unknown generator 'nope'"),
    ],
)
def test_bad_generator_configuration_is_a_clear_error(name: str, params: dict, message: str) -> None:
    from playnext.models.generators import UnknownGenerator

    with pytest.raises(UnknownGenerator, match=message):
        build_generator(name, params)
    assert build_generator("ease", {"l2": 10}).get_params()["l2"] == 10  # an int where a float is expected is fine
