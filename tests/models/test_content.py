"""Content similarity embeds catalog text once: the cache answers texts it has seen, embeds only the new ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from playnext.models.content import EmbeddingCache, embed


def test_the_cache_embeds_only_new_texts_and_gives_the_same_vectors(tmp_path: Path, monkeypatch) -> None:
    cache = EmbeddingCache(tmp_path / "cache.npz")
    first = cache.embed(["Blue Train | jazz | track", "So What | jazz | track"])
    np.testing.assert_allclose(first, embed(["Blue Train | jazz | track", "So What | jazz | track"]), atol=1e-5)
    seen: list[list[str]] = []

    def counting(texts: list[str], batch_size: int = 256) -> np.ndarray:
        seen.append(texts)
        return embed(texts, batch_size)

    monkeypatch.setattr("playnext.models.content.embed", counting)
    again = cache.embed(["So What | jazz | track", "Paranoid | metal | track", "So What | jazz | track"])
    assert seen == [["Paranoid | metal | track"]]
    np.testing.assert_allclose(again[0], first[1], atol=1e-6)
    np.testing.assert_allclose(again[0], again[2])
    assert np.dot(again[0], first[0]) > np.dot(again[0], again[1])  # jazz is nearer jazz than metal


def test_an_unreadable_cache_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "cache.npz"
    path.write_bytes(b"not numpy")
    got = EmbeddingCache(path).embed(["x | pop | track"])
    assert got.shape == (1, 384) and abs(np.linalg.norm(got[0]) - 1) < 1e-4
    assert len(np.load(path)["keys"]) == 1
