"""``user_profile``: what a listener's time goes to, in long form (``facet``, ``key``, ``share``).

Facets: ``genre``, ``artist``, ``content_type`` (track, episode, audiobook) and ``hour`` (0-23, UTC). Shares are
of listening time, not of play counts, so one finished audiobook chapter outweighs a string of skipped tracks.
Long form keeps the table the same on every engine; a reader pivots what it needs.
"""

from __future__ import annotations

import ibis

from playnext.config import PipelineSettings
from playnext.pipelines.inputs import Inputs
from playnext.pipelines.tables.common import LISTENING, with_items


def _shares(t: ibis.Table, facet: str) -> ibis.Table:
    per_key = t.group_by(["user_id", "key"]).aggregate(ms=t.ms.sum().cast("float64"))
    total = per_key.group_by("user_id").aggregate(total=per_key.ms.sum())
    joined = per_key.join(total, "user_id")
    joined = joined.filter(joined.total > 0)
    return joined.select(
        "user_id",
        facet=ibis.literal(facet),
        key=joined.key,
        share=joined.ms.cast("float64") / joined.total,
        ms_played=joined.ms,
    )


def user_profile(inputs: Inputs, p: PipelineSettings) -> ibis.Table:
    e = with_items(inputs, inputs.events.filter(inputs.events.type.isin(LISTENING)), "creator_id", "genres")
    e = e.mutate(ms=e.ms_played.fill_null(0))
    base = e.select("user_id", "ms", "item_type", "creator_id", "genres", hour=e.ts.hour())
    genres = base.filter(base.genres.notnull() & (base.genres.length() > 0))
    genres = genres.mutate(share_ms=genres.ms.cast("float64") / genres.genres.length().cast("float64"))
    genres = genres.select("user_id", key=genres.genres.unnest(), ms=genres.share_ms)
    artists = base.filter(base.item_type == "track").filter(base.creator_id.notnull())
    return ibis.union(
        _shares(genres, "genre"),
        _shares(artists.select("user_id", key=artists.creator_id, ms=artists.ms.cast("float64")), "artist"),
        _shares(base.select("user_id", key=base.item_type, ms=base.ms.cast("float64")), "content_type"),
        _shares(base.select("user_id", key=base.hour.cast("string"), ms=base.ms.cast("float64")), "hour"),
        distinct=False,
    )
