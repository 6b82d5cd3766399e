"""Search: typo-tolerant text match over the catalog's titles, re-ranked by the listener's taste.

Matching is rapidfuzz's weighted ratio (edit distance, partial and token-order aware, in C++), so "Toy Stroy" finds
"Toy Story". It scores the ``POOL`` titles that share the most character trigrams with the query
(``index.trigrams``), not the whole catalog: scoring every title took 50-70 ms at 130k titles, and grows with the
catalog. It scores them with ``process.cdist``, which lets go of the GIL while it works, so the server answers other
requests meanwhile; ``process.extract`` held it throughout. Best score first, ties in catalog order. Text relevance
decides; the listener's taste (a vector model's score, plus how much of their history shares the item's genre and
creator) breaks near-ties, so two equally good matches come in the order the listener is likelier to want. An
unknown listener gets text order with popularity as the tie-breaker.
"""

from __future__ import annotations

import numpy as np

from playnext.index.trigrams import TrigramIndex
from playnext.models.blend import standardize
from playnext.models.registry import ModelVersion
from playnext.surfaces.common import SurfaceList, picks

CANDIDATES = 200
# Titles scored per query. Of the simulated 100k world's 131k titles (``bench/search.py``), 10,000 gave the same top
# 20 as scoring every title for 600 of 604 queries, in a tenth of the time; 3,000 found a misspelt title as often,
# in a twentieth, but changed the top 20 of a fifth of the queries (among many equally good matches).
POOL = 10_000
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


def text_matches(titles: np.ndarray, index: TrigramIndex | None, wanted: str, *, limit: int = CANDIDATES,
                 pool: int = POOL) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The ``limit`` titles that best match the normalized query ``wanted``, and their scores (0-1): best first,
    ties in catalog order. Scored among the ``pool`` that ``index`` proposes, or among all titles without one (or
    when the query shares no trigram with any title). ``titles``: an object array, so a pool is taken from it in C;
    the search threads hold the GIL as little as they can, since the event loop waits for it meanwhile."""
    from rapidfuzz import fuzz, process

    scored = index.candidates(wanted, pool) if index is not None else None
    choices = titles if scored is None else titles[scored]
    if scored is None:
        scored = np.arange(len(titles))
    scores = process.cdist([wanted], choices, scorer=fuzz.WRatio, processor=None, score_cutoff=MIN_SCORE,
                           dtype=np.float32, workers=1)[0]  # fmt: skip
    kept = np.flatnonzero(scores >= MIN_SCORE)  # below the cutoff cdist writes 0
    best = kept[np.lexsort((scored[kept], -scores[kept]))][:limit]
    return scored[best], scores[best] / np.float32(100.0)


def prepare(version: ModelVersion) -> tuple[np.ndarray, TrigramIndex]:
    """The version's normalized titles and their trigram index, built once per version (0.5 s at 131k titles; on
    each request they would dominate its cost). The server builds them when it loads a version, so the first
    search after a promotion does not wait for them."""
    from rapidfuzz import utils

    names = version.data.meta.name
    titles = version.derive(
        "search_titles", lambda: np.array([utils.default_process(n) for n in names.tolist()], dtype=object)
    )
    return titles, version.derive("search_index", lambda: TrigramIndex(titles.tolist()))


def search(version: ModelVersion, query: str, user_id: str | None, *, n: int = 20) -> SurfaceList:
    from rapidfuzz import utils

    data = version.data
    titles, index = prepare(version)
    items, text = text_matches(titles, index, utils.default_process(query))
    if not len(items):
        return SurfaceList("search", [], False, version.id, {"query": query})
    row = data.user_row(user_id) if user_id else -1
    taste = _taste(version, row, items)
    final = text + TASTE_WEIGHT * standardize(taste[None, :].astype(np.float32))[0]
    order = np.argsort(-final, kind="stable")[:n]
    typical = np.median(taste)
    reasons = [f"matches “{query}”" + (" and your taste" if row >= 0 and taste[i] > typical else "")
               for i in order.tolist()]  # fmt: skip
    return SurfaceList("search", picks(version, items[order], final[order], reasons), row < 0, version.id,
                       {"query": query})  # fmt: skip
