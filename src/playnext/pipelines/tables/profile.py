"""``user_profile``: what a listener's time goes to, in long form (``facet``, ``key``, ``share``).

Facets: ``genre``, ``artist``, ``content_type`` (track, episode, audiobook) and ``hour`` (0-23, UTC). Shares are
of listening time, not of play counts, so one finished audiobook chapter outweighs a string of skipped tracks.
An item with several genres splits its time evenly between them. Long form keeps the table the same on every
engine; a reader pivots what it needs. The table keeps each key's milliseconds, so an incremental run adds the
new events' time and recomputes the shares: exact, because a share is a ratio of sums.
"""

from __future__ import annotations

import ibis

from playnext.config import PipelineSettings
from playnext.pipelines.inputs import Delta, Inputs
from playnext.pipelines.tables.common import LISTENING, with_items


def _facets(inputs: Inputs, events: ibis.Table) -> ibis.Table:
    """One row per (listening event, facet key) with the milliseconds it contributes: not yet aggregated."""
    e = with_items(inputs, events.filter(events.type.isin(LISTENING)), "creator_id", "genres")
    base = e.select(
        "user_id", "item_type", "creator_id", "genres", ms=e.ms_played.fill_null(0).cast("float64"), hour=e.ts.hour()
    )
    genres = base.filter(base.genres.notnull() & (base.genres.length() > 0))
    genres = genres.select(
        "user_id",
        facet=ibis.literal("genre"),
        key=genres.genres.unnest(),
        ms=genres.ms / genres.genres.length().cast("float64"),
    )
    artists = base.filter((base.item_type == "track") & base.creator_id.notnull())
    return ibis.union(
        genres,
        artists.select("user_id", facet=ibis.literal("artist"), key=artists.creator_id, ms=artists.ms),
        base.select("user_id", facet=ibis.literal("content_type"), key=base.item_type, ms=base.ms),
        base.select("user_id", facet=ibis.literal("hour"), key=base.hour.cast("string"), ms=base.ms),
        distinct=False,
    )


def _shares(parts: ibis.Table) -> ibis.Table:
    per_key = parts.group_by(["user_id", "facet", "key"]).aggregate(ms=parts.ms.sum().cast("float64"))
    total = per_key.group_by(["user_id", "facet"]).aggregate(total=per_key.ms.sum())
    joined = per_key.join(total, ["user_id", "facet"])
    joined = joined.filter(joined.total > 0)
    return joined.select("user_id", "facet", "key", share=joined.ms / joined.total, ms_played=joined.ms)


def user_profile(inputs: Inputs, p: PipelineSettings) -> ibis.Table:
    return _shares(_facets(inputs, inputs.events))


def user_profile_incremental(inputs: Inputs, previous: ibis.Table, delta: Delta, p: PipelineSettings) -> ibis.Table:
    old = previous.select("user_id", "facet", "key", ms=previous.ms_played.cast("float64"))
    return _shares(old.union(_facets(inputs, delta.new_events), distinct=False))
