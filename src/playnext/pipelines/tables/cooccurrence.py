"""``item_cooccurrence``: items played close together in a session, or added near each other to a playlist.

A pair counts when two different items are at most ``cooccurrence_window`` positions apart. Raw counts favour
popular items, so each pair also gets its lift (observed over expected) and PMI = ln(lift); the table keeps each
item's ``cooccurrence_top_k`` neighbours by PMI among pairs seen at least ``cooccurrence_min_count`` times.
"""

from __future__ import annotations

import ibis

from playnext.config import PipelineSettings
from playnext.pipelines.inputs import Inputs
from playnext.pipelines.tables.sessions import session_events


def _pairs(seq: ibis.Table, window: int) -> ibis.Table:
    """Both orders of every pair of different items within ``window`` positions of the same sequence."""
    other = seq.view()
    joined = seq.join(
        other,
        [
            seq.seq_id == other.seq_id,
            other.position > seq.position,
            other.position - seq.position <= window,
            seq.item_id != other.item_id,
        ],
    )
    forward = joined.select(a=seq.item_id, b=other.item_id)
    return forward.union(forward.select(a=forward.b, b=forward.a), distinct=False)


def item_cooccurrence(inputs: Inputs, p: PipelineSettings) -> ibis.Table:
    played = session_events(inputs.events, p)
    played = played.filter(played.type == "play")
    in_sessions = played.select(
        seq_id=played.session_id,
        item_id=played.item_id,
        position=ibis.row_number().over(group_by=played.session_id, order_by=[played.ts, played.event_id]),
    )
    adds = inputs.events.filter(inputs.events.type == "playlist_add")
    in_playlists = adds.select(
        seq_id=ibis.literal("playlist:").concat(adds.user_id, ":", adds.playlist_id),
        item_id=adds.item_id,
        position=ibis.row_number().over(group_by=[adds.user_id, adds.playlist_id], order_by=[adds.ts, adds.event_id]),
    )
    pairs = _pairs(in_sessions.union(in_playlists, distinct=False), p.cooccurrence_window)
    counts = pairs.group_by(["a", "b"]).aggregate(count=pairs.count().cast("int64"))
    totals = counts.group_by("a").aggregate(n_a=counts["count"].sum().cast("int64"))
    grand = counts["count"].sum().as_scalar()
    scored = counts.join(totals, "a").join(totals.select(b=totals.a, n_b=totals.n_a), "b")
    scored = scored.mutate(
        lift=scored["count"].cast("float64")
        * grand.cast("float64")
        / (scored.n_a.cast("float64") * scored.n_b.cast("float64"))
    )
    scored = scored.mutate(pmi=scored.lift.ln()).filter(scored["count"] >= p.cooccurrence_min_count)
    rank = ibis.row_number().over(
        group_by=scored.a, order_by=[ibis.desc(scored.pmi), ibis.desc(scored["count"]), scored.b]
    )
    ranked = scored.mutate(rank=(rank + 1).cast("int64"))
    return ranked.filter(ranked["rank"] <= p.cooccurrence_top_k).select(
        item_id=ranked.a, neighbour_id=ranked.b, count=ranked["count"], lift=ranked.lift, pmi=ranked.pmi,
        rank=ranked["rank"],
    )  # fmt: skip
