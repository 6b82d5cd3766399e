"""Search: typo-tolerant text match over the catalog's titles, re-ranked by the listener's taste.

Matching is rapidfuzz's weighted ratio (edit distance, partial and token-order aware, in C++), so "Toy Stroy" finds
"Toy Story". It scores the catalog with ``process.cdist``, which lets go of the GIL while it works (tens of
milliseconds at 100k titles), so the server answers other requests meanwhile; ``process.extract`` held it
throughout. The matches and their order are the same: best score first, ties in catalog order. Text relevance
decides; the listener's taste (a vector model's score, plus how much of their history shares the item's genre and
creator) breaks near-ties, so two equally good matches come in the order the listener is likelier to want. An
unknown listener gets text order with popularity as the tie-breaker.
"""

from __future__ import annotations

import numpy as np

from playnext.models.blend import standardize
from playnext.models.registry import ModelVersion
from playnext.surfaces.common import SurfaceList, picks

CANDIDATES = 200
MIN_SCORE = 50  # of rapidfuzz's 0-100: weaker matches are not shown
TASTE_WEIGHT = 0.02  # two text points per standard deviation of taste: taste orders near-ties, not the matches


def _taste(version: ModelVersion, row: int, items: np.ndarray) -> np.ndarray:
    data, side = version.data, version.recommender.side_
    if row < 0:
        return np.log1p(side.popularity[items])
    history = data.matrix[row].indices
    genre_share = np.isin(side.genre[items], side.genre[history]).astype(np.float32)
    creator_share = np.isin(side.creator[items], side.creator[history]).astype(np.float32)
    personal = np.zeros(len(items), np.float32)
    for model in version.recommender.generators.values():
        if model.name in ("als", "ann"):
            personal = model.score(np.full(len(items), row), items)
            break
    return standardize(personal[None, :])[0] + genre_share + creator_share


def search(version: ModelVersion, query: str, user_id: str | None, *, n: int = 20) -> SurfaceList:
    from rapidfuzz import fuzz, process, utils

    data = version.data
    # Normalizing every title on each request would dominate its cost.
    titles = version.derive("search_titles", lambda: [utils.default_process(n) for n in data.meta.name.tolist()])
    scores = process.cdist([utils.default_process(query)], titles, scorer=fuzz.WRatio, processor=None,
                           score_cutoff=MIN_SCORE, dtype=np.float32, workers=1)[0]  # fmt: skip
    matched = np.flatnonzero(scores >= MIN_SCORE)  # below the cutoff cdist writes 0
    if not len(matched):
        return SurfaceList("search", [], False, version.id, {"query": query})
    items = matched[np.lexsort((matched, -scores[matched]))][:CANDIDATES]
    text = scores[items] / np.float32(100.0)
    row = data.user_row(user_id) if user_id else -1
    taste = _taste(version, row, items)
    final = text + TASTE_WEIGHT * standardize(taste[None, :].astype(np.float32))[0]
    order = np.argsort(-final, kind="stable")[:n]
    reasons = [
        f"matches “{query}”" + (" and your taste" if row >= 0 and taste[i] > np.median(taste) else "")
        for i in order.tolist()
    ]
    return SurfaceList("search", picks(version, items[order], final[order], reasons), row < 0, version.id,
                       {"query": query})  # fmt: skip
