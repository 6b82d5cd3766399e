"""``user_item_affinity``: how much a listener likes an item, as implicit-feedback confidence.

Every interaction adds a weight (a play by how much of the item it covered, a save, a playlist add, a follow;
a skip or unsave subtracts) that halves every ``half_life_days`` before the run's reference time. Counts ride
along so that models can choose their own transform of the evidence.
"""

from __future__ import annotations

import math

import ibis

from playnext.config import PipelineSettings
from playnext.pipelines.inputs import Delta, Inputs
from playnext.pipelines.tables.common import completion, count_if, total, with_items

KINDS = ("play", "skip", "save", "unsave", "playlist_add", "follow")


def user_item_affinity(inputs: Inputs, p: PipelineSettings) -> ibis.Table:
    return _affinity(inputs, inputs.events, p)


def user_item_affinity_incremental(
    inputs: Inputs, previous: ibis.Table, delta: Delta, p: PipelineSettings
) -> ibis.Table:
    """Exact, not approximate: an affinity is a sum of weights each decayed by its age, so moving the reference
    time by Δ multiplies the whole sum by 2^(-Δ/half-life), and the new events' terms are simply added."""
    factor = 2.0 ** (-(inputs.as_of - delta.previous_as_of).total_seconds() / 86_400.0 / p.half_life_days)
    old = previous.mutate(affinity=previous.affinity * factor)
    both = old.union(_affinity(inputs, delta.new_events, p).select(*old.columns), distinct=False)
    return both.group_by(["user_id", "item_id", "item_type"]).aggregate(
        affinity=both.affinity.sum(),
        plays=both.plays.sum().cast("int64"),
        skips=both.skips.sum().cast("int64"),
        saves=both.saves.sum().cast("int64"),
        playlist_adds=both.playlist_adds.sum().cast("int64"),
        ms_played=both.ms_played.sum().cast("int64"),
        last_ts=both.last_ts.max(),
    )


def _affinity(inputs: Inputs, events: ibis.Table, p: PipelineSettings) -> ibis.Table:
    e = with_items(inputs, events.filter(events.type.isin(KINDS)), "duration_ms")
    age_days = (inputs.as_of.timestamp() - e.ts_s) / 86_400.0
    decay = (-math.log(2.0) * age_days / p.half_life_days).exp()
    weight = (
        ibis.cases(
            (e.type == "play", p.play_base + p.play_completion * completion(e)),
            (e.type == "skip", p.skip),
            (e.type == "save", p.save),
            (e.type == "unsave", p.unsave),
            (e.type == "playlist_add", p.playlist_add),
            (e.type == "follow", p.follow),
            else_=0.0,
        )
    ).cast("float64")
    e = e.mutate(contribution=weight * decay)
    return e.group_by(["user_id", "item_id", "item_type"]).aggregate(
        affinity=e.contribution.sum(),
        plays=count_if(e, e.type == "play"),
        skips=count_if(e, e.type == "skip"),
        saves=count_if(e, e.type == "save") - count_if(e, e.type == "unsave"),
        playlist_adds=count_if(e, e.type == "playlist_add"),
        ms_played=total(e.ms_played),
        last_ts=e.ts.max(),
    )
