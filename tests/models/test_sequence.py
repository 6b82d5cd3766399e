"""SASRec's one-sequence path (NumPy, used per next-track request) against PyTorch's forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from playnext.models.sequence import SASRec
from tests.models.small import two_tastes


@pytest.mark.parametrize("blocks", [1, 2, 3])  # the last layer, computed for the last position only, is also the first
def test_the_numpy_last_state_equals_pytorchs_forward_pass(blocks: int) -> None:
    data = two_tastes(n_users=30, n_items=40)
    model = SASRec(dim=16, max_len=12, blocks=blocks, heads=2, epochs=1, min_steps=20, threads=1).fit(data)
    rng = np.random.default_rng(0)
    for length in (1, 5, 12, 30):  # shorter than, equal to and longer than max_len
        sequence = rng.integers(0, data.n_items, size=length)
        fast = model.sequence_vectors([sequence])[0]
        padded = np.zeros((1, 12), dtype=np.int64)
        tail = sequence[-12:] + 1
        padded[0, 12 - len(tail) :] = tail
        with torch.no_grad():
            reference = model.net_(torch.from_numpy(padded))[0, -1].numpy()
        np.testing.assert_allclose(fast, reference, rtol=1e-4, atol=1e-5)
        assert np.abs(fast).sum() > 0
    assert not model.sequence_vectors([np.zeros(0, np.int64)]).any()  # an empty sequence has no state
