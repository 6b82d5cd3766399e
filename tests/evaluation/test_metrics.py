"""Ranking metrics on lists small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from playnext.evaluation.metrics import (
    coverage,
    hits_matrix,
    intra_list_diversity,
    ndcg_at_k,
    novelty,
    recall_at_k,
)


def test_recall_and_ndcg_by_hand() -> None:
    recommended = np.array([[5, 1, 7], [2, 3, 4]])
    positives = [np.array([1, 9]), np.array([8])]
    hits = hits_matrix(recommended, positives)
    assert hits.tolist() == [[False, True, False], [False, False, False]]
    n_pos = np.array([2, 1])
    np.testing.assert_allclose(recall_at_k(hits, n_pos), [0.5, 0.0])
    # DCG = 1/log2(3); ideal with 2 positives = 1 + 1/log2(3)
    expected = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    np.testing.assert_allclose(ndcg_at_k(hits, n_pos), [expected, 0.0])


def test_a_perfect_list_scores_one_even_with_more_positives_than_k() -> None:
    hits = hits_matrix(np.array([[1, 2]]), [np.array([1, 2, 3, 4])])
    assert recall_at_k(hits, np.array([4]))[0] == pytest.approx(1.0)
    assert ndcg_at_k(hits, np.array([4]))[0] == pytest.approx(1.0)


def test_coverage_diversity_and_novelty() -> None:
    recommended = np.array([[0, 1, -1], [0, 2, 3]])
    assert coverage(recommended, 10) == pytest.approx(0.4)
    genre = np.array([0, 0, 1, 1])
    # list 1: pair (0,1) same genre -> 0; list 2: genres 0,1,1 -> 2 of 3 pairs differ
    np.testing.assert_allclose(intra_list_diversity(recommended, genre), [0.0, 2 / 3])
    item_users = np.array([3, 0, 0, 1])
    got = novelty(recommended, item_users, n_users=3)
    assert got[0] == pytest.approx(np.mean([-np.log2(1.0), -np.log2(0.25)]))
