"""EASE, RP3β and popularity against values worked out by hand or by their closed-form definitions."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from playnext.models.item_item import EASE, RP3Beta
from playnext.models.popularity import Popularity
from tests.models.small import two_tastes


def _with_matrix(dense: list[list[float]]):
    data = two_tastes(n_users=len(dense), n_items=len(dense[0]))
    data.matrix = sp.csr_matrix(np.array(dense, dtype=np.float32))
    return data


def test_ease_weights_are_the_closed_form_solution() -> None:
    x = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=float)
    model = EASE(l2=0.5).fit(_with_matrix(x.tolist()))
    p = np.linalg.inv(x.T @ x + 0.5 * np.eye(3))
    expected = np.eye(3) - p / np.diag(p)
    np.testing.assert_allclose(model.b_, expected, atol=1e-5)
    assert np.allclose(np.diag(model.b_), 0)
    np.testing.assert_allclose(model.user_scores(np.array([0])), (x[[0]] @ expected), atol=1e-5)


def test_ease_limits_itself_to_the_most_popular_items() -> None:
    x = [[1, 1, 0, 0], [1, 1, 0, 1], [1, 0, 1, 0]]
    model = EASE(l2=1.0, max_items=2).fit(_with_matrix(x))
    assert model.items_.tolist() == [0, 1]
    scores = model.user_scores(np.array([2]))
    assert np.isneginf(scores[0, 2]) and np.isneginf(scores[0, 3])


def test_rp3beta_is_a_three_step_walk_with_popularity_penalty() -> None:
    x = np.array([[1, 1, 0], [0, 1, 1]], dtype=float)
    model = RP3Beta(alpha=1.0, beta=0.5, top_k=10).fit(_with_matrix(x.tolist()))
    p_ui = x / x.sum(axis=1, keepdims=True)
    p_iu = x.T / x.T.sum(axis=1, keepdims=True)
    w = (p_iu @ p_ui) / np.power(x.sum(axis=0), 0.5)
    np.fill_diagonal(w, 0)
    np.testing.assert_allclose(model.weights_.toarray(), w, atol=1e-6)
    # item 1 → item 0 and item 2 each with 0.5·0.5/1 = 0.25
    assert np.isclose(model.weights_[1, 0], 0.25) and np.isclose(model.weights_[1, 2], 0.25)


def test_popularity_by_country_ranks_what_each_country_plays() -> None:
    data = _with_matrix([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 1]])
    data.user_country = np.array(["SE", "SE", "BR", "BR"], dtype=object)
    model = Popularity(segment="country").fit(data)
    se, br = model.segment_of("SE"), model.segment_of("BR")
    scores = model.segment_scores(np.array([se, br, -1]))
    assert scores[0].argmax() == 0 and scores[1].argmax() == 1
    np.testing.assert_allclose(scores[2], np.log1p([2, 2, 1]))  # unknown country: the overall ranking
    assert model.segment_of("XX") == -1


def test_trending_prefers_items_rising_now() -> None:
    data = _with_matrix([[1, 1], [1, 1], [1, 0], [1, 0]])
    data.recent_counts = np.array([0.0, 2.0], dtype=np.float32)  # item 1: all its plays are recent
    scores = Popularity(trending=True).fit(data).user_scores(np.array([-1]))
    assert scores[0, 1] > scores[0, 0]


def test_popularity_answers_from_one_order_per_segment_exactly_as_a_full_selection_would() -> None:
    from playnext.models.base import CandidateModel

    data = two_tastes(n_users=40, n_items=60)
    data.user_country = np.array(["SE", "DE", ""] * 13 + ["SE"])
    for segment in ("global", "country"):
        model = Popularity(segment=segment).fit(data)
        users = np.array([0, 5, 17, 39, -1])
        for exclude in (True, False):
            fast = model.recommend(users, 25, exclude_seen=exclude)
            full = CandidateModel.recommend(model, users, 25, exclude_seen=exclude)
            # The same scores in the same order; among equal scores either may pick any item.
            assert np.allclose(fast.scores, full.scores), (segment, exclude)
            for row, user in enumerate(users.tolist()):
                picked = fast.items[row][fast.items[row] >= 0]
                assert len(set(picked.tolist())) == len(picked)
                if exclude and user >= 0:
                    assert not set(picked.tolist()) & set(data.matrix[user].indices.tolist())


def test_top_n_of_pairs_equals_a_dense_selection() -> None:
    from playnext.models.interactions import top_n, top_n_of_pairs

    rng = np.random.default_rng(1)
    rows, items = rng.integers(0, 7, 300), rng.integers(0, 1000, 300)
    keys = np.unique(rows * 1000 + items)
    rows, items = keys // 1000, keys % 1000
    scores = rng.normal(size=len(rows)).astype(np.float32)
    dense = np.full((8, 1000), -np.inf, np.float32)
    dense[rows, items] = scores
    got, want = top_n_of_pairs(rows, items, scores, 8, 20), top_n(dense, 20)
    assert (got.items == want.items).all() and np.allclose(got.scores, want.scores)  # row 7 is empty in both
