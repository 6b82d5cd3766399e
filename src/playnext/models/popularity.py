"""Popularity and trending, overall or within a segment: the cold-start fallback every surface can rely on.

``segment="country"`` ranks by what listeners of the same country play; ``"genre"`` by what is popular in the
listener's main genre. Listeners without history (or without a segment) get the overall ranking. ``trending``
ranks by recent plays relative to all-time plays instead: what is rising, not what is big.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from playnext.models.base import CandidateModel
from playnext.models.interactions import Candidates, Interactions

SEGMENTS = ("global", "country", "genre")


class Popularity(CandidateModel):
    name = "popularity"

    def __init__(self, segment: str = "global", trending: bool = False, smoothing: float = 10.0) -> None:
        if segment not in SEGMENTS:
            raise ValueError(f"segment must be one of {', '.join(SEGMENTS)}, not {segment!r}")
        super().__init__(segment=segment, trending=trending, smoothing=smoothing)
        self._orders: dict[int, np.ndarray] = {}  # segment → its items best first (``_order``)

    def _base(self, counts: np.ndarray, recent: np.ndarray) -> np.ndarray:
        if self.params["trending"]:
            return (np.log1p(recent) * recent / (counts + self.params["smoothing"])).astype(np.float32)
        return np.log1p(counts).astype(np.float32)

    def _fit(self, data: Interactions) -> None:
        self._orders = {}
        binary = data.binary()
        counts = np.asarray(binary.sum(axis=0)).ravel()
        self.global_ = self._base(counts, data.recent_counts)
        segment = self.params["segment"]
        if segment == "country":
            labels, user_segment = np.unique(data.user_country.astype(str), return_inverse=True)
        elif segment == "genre":
            genres, item_genre = np.unique(data.meta.genre.astype(str), return_inverse=True)
            onehot = sp.csr_matrix(
                (np.ones(data.n_items), (np.arange(data.n_items), item_genre)), shape=(data.n_items, len(genres))
            )
            per_user = binary @ onehot
            top = np.asarray(per_user.argmax(axis=1)).ravel()
            labels, user_segment = genres, top
            user_segment[np.asarray(per_user.sum(axis=1)).ravel() == 0] = -1
        else:
            labels, user_segment = np.array([], dtype=str), np.full(data.n_users, -1)
        self.labels_ = np.asarray(labels, dtype=str)
        self.user_segment_ = np.asarray(user_segment, dtype=np.int64)
        if segment == "genre":
            # Within a genre: the overall ranking with the genre's own items first.
            self.item_segment_ = item_genre.astype(np.int64)
            self.segment_scores_ = np.zeros((len(labels), 0), np.float32)
        elif segment == "country":
            seg = sp.csr_matrix(
                (np.ones(data.n_users), (self.user_segment_, np.arange(data.n_users))),
                shape=(len(labels), data.n_users),
            )
            per = np.asarray((seg @ binary).todense())
            self.segment_scores_ = (
                np.stack([self._base(row, data.recent_counts) for row in per])
                if len(per)
                else (np.zeros((0, data.n_items), np.float32))
            )
            self.item_segment_ = np.zeros(0, np.int64)
        else:
            self.segment_scores_ = np.zeros((0, data.n_items), np.float32)
            self.item_segment_ = np.zeros(0, np.int64)

    def segment_of(self, label: str | None) -> int:
        """The segment number of a label (a country code, a genre), -1 when unknown."""
        hit = np.flatnonzero(self.labels_ == (label or ""))
        return int(hit[0]) if len(hit) and label else -1

    def segment_scores(self, segments: np.ndarray) -> np.ndarray:
        """Scores for listeners known only by segment (a new listener's country): the cold-start path."""
        segments = np.asarray(segments, dtype=np.int64)
        out = np.repeat(self.global_[None, :], len(segments), axis=0)
        if self.params["segment"] == "country":
            known = segments >= 0
            out[known] = self.segment_scores_[segments[known]]
        elif self.params["segment"] == "genre":
            boost = float(self.global_.max(initial=0.0)) + 1.0
            for row, s in enumerate(segments.tolist()):
                if s >= 0:
                    out[row, self.item_segment_ == s] += boost
        return out

    def user_scores(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        segments = np.where(users >= 0, self.user_segment_[np.where(users >= 0, users, 0)], -1)
        return self.segment_scores(segments)

    def recommend(self, users: np.ndarray, n: int, exclude_seen: bool = True) -> Candidates:
        """Every listener of a segment shares one order: sort it once per segment, then drop each listener's seen
        items from its head, instead of a selection over the whole catalog per listener."""
        if self.params["segment"] == "genre":
            return super().recommend(users, n, exclude_seen)
        self._check()
        users = np.asarray(users, dtype=np.int64)
        out = Candidates.empty(len(users), n)
        seen = self.seen(users) if exclude_seen else None
        longest = int(np.diff(seen.indptr).max(initial=0)) if seen is not None else 0
        depth = min(n + longest, self.n_items_)
        if self.params["segment"] == "country":
            segments = np.where(users >= 0, self.user_segment_[np.where(users >= 0, users, 0)], -1)
        else:
            segments = np.full(len(users), -1)
        for segment in np.unique(segments).tolist():
            scores = self.segment_scores(np.array([segment]))[0]
            head = self._order(segment)[:depth]
            for row in np.flatnonzero(segments == segment).tolist():
                items = head
                if seen is not None and seen.indptr[row + 1] > seen.indptr[row]:
                    items = head[~np.isin(head, seen.indices[seen.indptr[row] : seen.indptr[row + 1]])]
                items = items[:n]
                out.items[row, : len(items)], out.scores[row, : len(items)] = items, scores[items]
        return out

    def _order(self, segment: int) -> np.ndarray:
        """The segment's items best first, ties in catalog order. It is the same for every request, and sorting the
        catalog on each took 4-6 ms at 131k items, a third of a live Blend; kept per segment (as int32, half the
        size of the segment's scores), dropped when the model is fitted again."""
        order = self._orders.get(segment)
        if order is None:
            scores = self.segment_scores(np.array([segment]))[0]
            order = self._orders[segment] = np.argsort(-scores, kind="stable").astype(np.int32)
        return order

    def item_scores(self, items: np.ndarray) -> np.ndarray:
        """Popularity has no notion of similarity: every item's neighbours are the popular items."""
        return np.repeat(self.global_[None, :], len(items), axis=0)

    def _state(self) -> dict[str, np.ndarray]:
        return {
            k: getattr(self, k) for k in ("global_", "labels_", "user_segment_", "segment_scores_", "item_segment_")
        }

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
