"""``outcomes``: what followed each impression; the raw material of reward labels and experiment metrics.

Within ``outcome_window_hours`` after an impression, did the listener stream the shown item past
``stream_threshold_ms``, save it, skip it? And did they come back to listen on a later day within
``return_window_days``? ``complete`` says whether the return window had closed by the run's reference time; labels
for impressions still open are provisional.
"""

from __future__ import annotations

import datetime as dt

import ibis

from playnext.config import PipelineSettings
from playnext.pipelines.inputs import Delta, Inputs

_IMPRESSION = [
    "impression_id",
    "user_id",
    "item_id",
    "item_type",
    "ts",
    "surface",
    "position",
    "request_id",
    "variant",
    "propensity",
]


def outcomes(inputs: Inputs, p: PipelineSettings) -> ibis.Table:
    return _outcomes(inputs, inputs.events, p)


def outcomes_incremental(inputs: Inputs, previous: ibis.Table, delta: Delta, p: PipelineSettings) -> ibis.Table:
    """Only impressions that new events can reach (within the longest window before ``since``) or that were still
    open at the previous reference time are recomputed; every other row is final and kept as it is."""
    reach = max(p.outcome_window_hours / 24.0, p.return_window_days)
    bound = min(
        delta.since - dt.timedelta(days=reach),
        delta.previous_as_of - dt.timedelta(days=p.return_window_days),
    )
    cut = ibis.literal(bound)
    recent = inputs.events.filter(inputs.events.ts >= cut)
    kept = previous.filter(previous.ts < cut)
    return kept.union(_outcomes(inputs, recent, p).select(*kept.columns), distinct=False)


def _outcomes(inputs: Inputs, e: ibis.Table, p: PipelineSettings) -> ibis.Table:
    """Reactions and returns are found per ``impression_id`` alone and joined back to the impression's columns,
    so the joins and groupings carry four columns, not ten."""
    imp = e.filter(e.type == "impression")
    imp = imp.select(*_IMPRESSION[1:], impression_id=imp.event_id, imp_s=imp.ts_s)
    keys = imp.select("impression_id", "user_id", "item_id", "imp_s")
    acts = e.filter(e.type.isin(("play", "skip", "save")))
    acts = acts.select(
        a_user=acts.user_id, a_item=acts.item_id, a_type=acts.type, a_ms=acts.ms_played.fill_null(0), a_s=acts.ts_s
    )
    window = p.outcome_window_hours * 3600.0
    near = keys.join(
        acts,
        [
            keys.user_id == acts.a_user,
            keys.item_id == acts.a_item,
            acts.a_s >= keys.imp_s,
            acts.a_s <= keys.imp_s + window,
        ],
    )
    reacted = near.group_by("impression_id").aggregate(
        streamed=near.count(where=(near.a_type == "play") & (near.a_ms >= p.stream_threshold_ms)) > 0,
        saved=near.count(where=near.a_type == "save") > 0,
        skipped=near.count(where=near.a_type == "skip") > 0,
        ms_played=ibis.ifelse(near.a_type == "play", near.a_ms, 0).sum().cast("int64"),
    )
    plays = e.filter(e.type == "play")
    plays = plays.select(r_user=plays.user_id, r_s=plays.ts_s)
    day = 86_400.0
    returned = keys.semi_join(
        plays,
        [
            keys.user_id == plays.r_user,
            plays.r_s > keys.imp_s + day,
            plays.r_s <= keys.imp_s + p.return_window_days * day,
        ],
    ).select(returned_id="impression_id")
    out = imp.left_join(reacted, "impression_id").left_join(returned, imp.impression_id == returned.returned_id)
    return out.select(
        *_IMPRESSION,
        streamed=out.streamed.fill_null(False),
        saved=out.saved.fill_null(False),
        skipped=out.skipped.fill_null(False),
        returned=out.returned_id.notnull(),
        ms_played=out.ms_played.fill_null(0).cast("int64"),
        complete=out.imp_s + p.return_window_days * day <= inputs.as_of.timestamp(),
    )
