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
    imp = e.filter(e.type == "impression")
    imp = imp.select(*_IMPRESSION[1:], impression_id=imp.event_id, imp_s=imp.ts_s)
    acts = e.filter(e.type.isin(("play", "skip", "save")))
    acts = acts.select(
        a_user=acts.user_id,
        a_item=acts.item_id,
        a_type=acts.type,
        a_ms=acts.ms_played.fill_null(0),
        a_s=acts.ts_s,
    )
    window = p.outcome_window_hours * 3600.0
    near = imp.left_join(
        acts,
        [imp.user_id == acts.a_user, imp.item_id == acts.a_item, acts.a_s >= imp.imp_s, acts.a_s <= imp.imp_s + window],
    )
    reacted = near.group_by([*_IMPRESSION, "imp_s"]).aggregate(
        streamed=((near.a_type == "play") & (near.a_ms >= p.stream_threshold_ms)).ifelse(1, 0).max(),
        saved=(near.a_type == "save").ifelse(1, 0).max(),
        skipped=(near.a_type == "skip").ifelse(1, 0).max(),
        ms_played=ibis.ifelse(near.a_type == "play", near.a_ms, 0).sum().cast("int64"),
    )
    plays = e.filter(e.type == "play")
    plays = plays.select(r_user=plays.user_id, r_s=plays.ts_s)
    day = 86_400.0
    later = reacted.left_join(
        plays,
        [
            reacted.user_id == plays.r_user,
            plays.r_s > reacted.imp_s + day,
            plays.r_s <= reacted.imp_s + p.return_window_days * day,
        ],
    )
    full = later.group_by([*_IMPRESSION, "imp_s", "streamed", "saved", "skipped", "ms_played"]).aggregate(
        returned=later.r_s.notnull().ifelse(1, 0).max()
    )
    return full.select(
        *_IMPRESSION,
        streamed=full.streamed.fill_null(0) == 1,
        saved=full.saved.fill_null(0) == 1,
        skipped=full.skipped.fill_null(0) == 1,
        returned=full.returned == 1,
        ms_played=full.ms_played.fill_null(0).cast("int64"),
        complete=full.imp_s + p.return_window_days * day <= inputs.as_of.timestamp(),
    )
