"""Next track: what to play after the current one, from the sequence model and the live session.

The listener's liked history, the session's recent plays and the current track form one sequence for SASRec;
its scores are blended with the items most similar to the current track (co-occurrence, else item vectors),
each standardized. The current track, the session's recent plays and the listener's last plays are never
proposed again. An unknown current track and an unknown listener fall back to segment popularity.
"""

from __future__ import annotations

import numpy as np

from playnext.models.blend import standardize
from playnext.models.interactions import top_n
from playnext.models.item_item import Cooccurrence
from playnext.models.registry import ModelVersion
from playnext.models.sequence import SASRec
from playnext.surfaces.common import SurfaceList, because, fallback_scores, generator, picks

RECENT_HISTORY = 20  # the listener's last plays, also never repeated


def next_tracks(
    version: ModelVersion, user_id: str, current: str, recent: list[str], *, n: int = 20, country: str | None = None,
    never: list[str] | None = None,
) -> SurfaceList:  # fmt: skip
    """``recent``: the session's plays, oldest first (the model reads them); ``never``: further items not to
    propose (the live session's skips and earlier plays)."""
    data = version.data
    row = int(data.user_index([user_id])[0])
    cur = int(data.item_index([current])[0])
    session = [i for i in data.item_index(recent).tolist() if i >= 0]
    history = data.sequence(row) if row >= 0 else np.zeros(0, np.int64)
    sequence = np.concatenate([history, np.array(session, np.int64), np.array([cur] if cur >= 0 else [], np.int64)])
    parts = []
    sasrec = generator(version, SASRec)
    if sasrec is not None and len(sequence):
        parts.append(standardize(sasrec.sequence_scores([sequence]))[0])
    if cur >= 0:
        similar = generator(version, Cooccurrence) or next(iter(version.recommender.generators.values()))
        scores = similar.item_scores(np.array([cur]))
        if np.isfinite(scores).any() and np.nanmax(np.where(np.isfinite(scores), scores, np.nan)) > 0:
            parts.append(standardize(scores)[0])
    fallback = not parts
    total = np.sum(parts, axis=0) if parts else fallback_scores(version, country).astype(np.float32)
    total = total.astype(np.float32).copy()
    same_kind = data.meta.item_type == (data.meta.item_type[cur] if cur >= 0 else "track")
    total[~same_kind] = -np.inf
    others = data.item_index(never or [])
    banned = np.concatenate([history[-RECENT_HISTORY:], np.array(session, np.int64), others[others >= 0]])
    total[banned.astype(np.int64)] = -np.inf
    if cur >= 0:
        total[cur] = -np.inf
    order = top_n(total[None, :], n).items[0]  # argpartition: a full sort of a 100k catalog was most of the cost
    order = order[order >= 0]
    if cur >= 0 and not fallback:
        reasons = [f"goes well after {data.meta.name[cur]}"] * len(order)
    else:
        reasons = because(version, np.unique(history), order, "popular right now")
    return SurfaceList(
        "next-track", picks(version, order, total[order], reasons), fallback, version.id, {"current": current}
    )
