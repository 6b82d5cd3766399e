"""Next track: what to play after the current one, from the sequence model and the live session.

The listener's liked history, the session's recent plays and the current track form one sequence for SASRec. Its
best continuations (``POOL // 2`` from the version's voyager index over SASRec's item vectors, searched with breadth
``SEQUENCE_EF``, on a large catalog; else ``POOL``, exactly) and the ``POOL`` strongest co-occurrence neighbours
of the current track (else the most popular items) form the candidates; each signal is standardized
over them and summed. Scoring candidates rather
than the whole catalog keeps a request within a few milliseconds at 100k tracks: a full pass (two dense score
rows, their standardization and a selection over every item) cost several times that. The current track, the
session's plays and skips and the listener's last plays are never proposed again. An unknown current track and an
unknown listener fall back to segment popularity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from playnext.index.ann import AnnIndexed
from playnext.models.interactions import top_n
from playnext.models.item_item import Cooccurrence
from playnext.models.registry import ModelVersion
from playnext.models.sequence import SASRec
from playnext.surfaces.common import SurfaceList, because, generator, picks, popular_order, unwrap

RECENT_HISTORY = 20  # the listener's last plays, also never repeated
POOL = 200  # candidates from each signal
# SASRec's continuations come from its voyager index with this breadth: all of them are then scored exactly, so a
# narrower search costs a few candidates at the margin, and the search was the largest part of a request.
SEQUENCE_EF = 100


def _sequence_model(version: ModelVersion) -> tuple[SASRec, AnnIndexed | None] | None:
    """The version's SASRec and its voyager index (None without one), found once per version."""

    def find() -> tuple[SASRec, AnnIndexed | None] | None:
        for m in version.recommender.generators.values():
            if isinstance(model := unwrap(m), SASRec):
                return model, m if isinstance(m, AnnIndexed) else None
        return None

    return version.derive("next_track_sequence_model", find)


@dataclass(frozen=True)
class Search:
    """How SASRec's continuations are found: the best ``k``, from the version's voyager index searched with breadth
    ``ef``, or exactly over every item when ``ef`` is None (or the version has no index). Served: ``served``;
    ``bench/next_track.py`` weighs others against it on listeners' real next plays."""

    k: int
    ef: int | None


INDEXED = Search(POOL // 2, SEQUENCE_EF)  # served where the version has a voyager index
EXACT = Search(POOL, None)  # served where it has none


def served(version: ModelVersion) -> Search:
    found = _sequence_model(version)
    return _served(found[1] if found is not None else None)


def _served(indexed: AnnIndexed | None) -> Search:
    return INDEXED if indexed is not None else EXACT


def _sequence_candidates(
    version: ModelVersion, sequence: np.ndarray, search: Search | None
) -> tuple[np.ndarray, SASRec, np.ndarray] | None:
    """(SASRec's best continuations, the model, the sequence's vector), or None without SASRec or a sequence."""
    found = _sequence_model(version)
    if found is None or not len(sequence):
        return None
    model, indexed = found
    search = search or _served(indexed)
    vector = model.sequence_vectors([sequence])
    if indexed is not None and search.ef is not None:
        items = indexed.index_.query(vector, search.k, ef=search.ef)[0][0]
    else:
        items = top_n(vector @ model.item_factors_.T, search.k).items[0]
    return items[items >= 0], model, vector[0]


def _item_kinds(version: ModelVersion) -> tuple[np.ndarray, dict[str, int]]:
    """Each item's type as a small integer, and the codes: comparing strings per candidate cost more."""

    def codes() -> tuple[np.ndarray, dict[str, int]]:
        names, kinds = np.unique(version.data.meta.item_type, return_inverse=True)
        return kinds.astype(np.int8), {str(name): code for code, name in enumerate(names.tolist())}

    return version.derive("item_type_codes", codes)


def _z(scores: np.ndarray) -> np.ndarray:
    """Standardized scores (all finite here): ``models.blend.standardize`` handles missing values, at several
    times the cost, on what is one small row per request (and sums beat NumPy's ``mean``/``std`` wrappers)."""
    centred = scores - scores.sum() / len(scores)
    std = float(np.sqrt(np.square(centred).sum() / len(scores)))
    return centred / (std if std > 1e-9 else 1.0)


def _sorted_unique(items: np.ndarray) -> np.ndarray:
    """``np.unique`` of a few hundred candidates in a quarter of its time (NumPy 2's hashing ``unique`` cost 18 µs
    a request here)."""
    items = np.sort(items)
    keep = np.empty(len(items), bool)
    keep[:1] = True
    np.not_equal(items[1:], items[:-1], out=keep[1:])
    return items[keep]


def _neighbours(version: ModelVersion, current: int) -> tuple[np.ndarray, np.ndarray]:
    """(items, similarity) of the current track's strongest neighbours."""
    graph = generator(version, Cooccurrence)
    if graph is not None:
        w = graph.weights_  # the row read straight from CSR: scipy's row indexing cost more than the rest
        lo, hi = w.indptr[current], w.indptr[current + 1]
        items, scores = w.indices[lo:hi], w.data[lo:hi]
        keep = scores > 0
        items, scores = items[keep], scores[keep]
        if len(scores) > POOL:  # a popular track's row holds thousands: select, then sort only the selection
            best = np.argpartition(-scores, POOL - 1)[:POOL]
            best = best[np.lexsort((best, -scores[best]))]  # by score, ties by position
        else:
            best = np.argsort(-scores, kind="stable")
        if len(best):
            return items[best].astype(np.int64), scores[best].astype(np.float32)
    # Co-occurrence knows nothing of this track: the most popular items stand in, by rank, from the order sorted
    # once per version (another model's ``similar_items`` scored the whole catalog: a millisecond per request).
    order = popular_order(version, None)[: POOL + 1]
    order = order[order != current][:POOL].astype(np.int64)
    return order, (1.0 / (1.0 + np.arange(len(order)))).astype(np.float32)


def next_tracks(
    version: ModelVersion, user_id: str, current: str, recent: list[str], *, n: int = 20, country: str | None = None,
    never: list[str] | None = None, search: Search | None = None,
) -> SurfaceList:  # fmt: skip
    """``recent``: the session's plays, oldest first (the model reads them); ``never``: further items not to
    propose (the live session's skips and earlier plays); ``search``: how the continuations are found (default
    ``served``)."""
    data = version.data
    row = data.user_row(user_id)
    cur = data.item_row(current)
    session = [i for i in data.item_index(recent).tolist() if i >= 0]
    history = data.sequence(row) if row >= 0 else np.zeros(0, np.int64)
    sequence = np.concatenate([history, np.array(session, np.int64), np.array([cur] if cur >= 0 else [], np.int64)])
    sequential = _sequence_candidates(version, sequence, search)
    near = _neighbours(version, cur) if cur >= 0 else (np.zeros(0, np.int64), np.zeros(0, np.float32))
    pool = _sorted_unique(np.concatenate([sequential[0] if sequential else np.zeros(0, np.int64), near[0]]))
    parts = []
    if sequential is not None and len(pool):
        _, model, vector = sequential
        parts.append(model.item_factors_[pool] @ vector)
    if len(near[0]) and len(pool):
        similarity = np.zeros(len(pool), np.float32)
        similarity[np.searchsorted(pool, near[0])] = near[1]
        parts.append(similarity)
    fallback = not parts
    if fallback:
        pool = popular_order(version, country)[: POOL * 4]
        total = -np.arange(len(pool), dtype=np.float32)
    else:
        total = sum((_z(p) for p in parts[1:]), _z(parts[0])).astype(np.float32)
    kinds, code_of = _item_kinds(version)
    kind = kinds[cur] if cur >= 0 else code_of.get("track", -1)
    others = data.item_index(never or [])
    banned = np.concatenate([history[-RECENT_HISTORY:], np.array(session, np.int64), others[others >= 0],
                             np.array([cur], np.int64)])  # fmt: skip
    is_banned = np.zeros(data.n_items, bool)  # a mask over the catalog: cheaper than ``isin`` on these sizes
    is_banned[banned[banned >= 0]] = True  # an unknown current track is -1, which would index the last item
    allowed = (kinds[pool] == kind) & ~is_banned[pool]
    pool, total = pool[allowed], total[allowed]
    best = np.argsort(-total, kind="stable")[:n]  # a few hundred candidates: a sort beats a selection's overhead
    order, scores = pool[best], total[best]
    if cur >= 0 and not fallback:
        reasons = [f"goes well after {data.meta.name[cur]}"] * len(order)
    else:
        reasons = because(version, np.unique(history), order, "popular right now")
    return SurfaceList("next-track", picks(version, order, scores, reasons), fallback, version.id, {"current": current})
