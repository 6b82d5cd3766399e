"""``item_stats`` and ``artist_stats``: popularity, trend, skip rate, completion and reach.

The trend compares the last ``trend_days`` before the reference time with the ``trend_days`` before those, with
add-one smoothing so that an item going from 0 to 3 plays does not read as infinitely hot.
"""

from __future__ import annotations

import ibis

from playnext.config import PipelineSettings
from playnext.pipelines.inputs import Inputs
from playnext.pipelines.tables.common import LISTENING, completion, count_if, total, with_items


def _stats(e: ibis.Table, keys: list[str], inputs: Inputs, p: PipelineSettings) -> ibis.Table:
    now = inputs.as_of.timestamp()
    span = p.trend_days * 86_400.0
    age = now - e.ts_s
    play = e.type == "play"
    listen = e.type.isin(LISTENING)
    out = e.group_by(keys).aggregate(
        plays=count_if(e, play),
        skips=count_if(e, e.type == "skip"),
        streams=count_if(e, play & (e.ms_played.fill_null(0) >= p.stream_threshold_ms)),
        saves=count_if(e, e.type == "save"),
        listeners=e.user_id.nunique(where=listen),
        completion_rate=ibis.ifelse(play, completion(e), ibis.null("float64")).mean(),
        ms_played=total(e.ms_played),
        plays_recent=count_if(e, play & (age < span)),
        plays_before=count_if(e, play & (age >= span) & (age < 2 * span)),
    )
    return out.mutate(
        skip_rate=ibis.ifelse(
            out.plays + out.skips > 0,
            out.skips.cast("float64") / (out.plays + out.skips).cast("float64"),
            ibis.null("float64"),
        ),
        trend=(out.plays_recent + 1).cast("float64") / (out.plays_before + 1).cast("float64"),
    )


def item_stats(inputs: Inputs, p: PipelineSettings) -> ibis.Table:
    e = inputs.events
    e = with_items(inputs, e.filter(e.type.isin(("play", "skip", "save")) & e.item_id.notnull()), "duration_ms")
    return _stats(e, ["item_id", "item_type"], inputs, p)


def artist_stats(inputs: Inputs, p: PipelineSettings) -> ibis.Table:
    e = inputs.events
    e = with_items(
        inputs, e.filter(e.type.isin(("play", "skip", "save")) & (e.item_type == "track")), "duration_ms", "creator_id"
    )
    e = e.filter(e.creator_id.notnull()).rename(artist_id="creator_id")
    return _stats(e, ["artist_id"], inputs, p)
