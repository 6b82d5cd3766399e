"""The feature tables. Each is a function from the run's inputs to one Ibis expression, and nothing else: no engine,
no files. The registry below is what ``playnext pipeline run --tables`` chooses from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ibis

from playnext.config import PipelineSettings
from playnext.pipelines.inputs import Delta, Inputs
from playnext.pipelines.tables import affinity, cooccurrence, outcomes, profile, sessions, stats


@dataclass(frozen=True)
class FeatureTable:
    name: str
    version: int  # bumped when the table's meaning or columns change
    build: Callable[[Inputs, PipelineSettings], ibis.Table]
    doc: str
    # From the previous table and the new events to the whole new table; None: this table is always rebuilt.
    incremental: Callable[[Inputs, ibis.Table, Delta, PipelineSettings], ibis.Table] | None = None
    why_full: str = ""


TABLES: dict[str, FeatureTable] = {
    t.name: t
    for t in (
        FeatureTable(
            "user_item_affinity",
            1,
            affinity.user_item_affinity,
            "confidence per user and item",
            incremental=affinity.user_item_affinity_incremental,
        ),
        FeatureTable(
            "sessions",
            1,
            sessions.sessions,
            "listening sessions split by inactivity",
            incremental=sessions.sessions_incremental,
        ),
        FeatureTable(
            "item_cooccurrence",
            1,
            cooccurrence.item_cooccurrence,
            "top-K neighbours per item by PMI",
            why_full="a late event can merge two sessions and change pairs anywhere; top-K keeps no counts to add to",
        ),
        FeatureTable(
            "item_stats",
            1,
            stats.item_stats,
            "popularity, trend, skip and completion per item",
            why_full="the trend windows slide with the reference time, and distinct listeners do not add up",
        ),
        FeatureTable(
            "artist_stats",
            1,
            stats.artist_stats,
            "the same per artist (creator)",
            why_full="as item_stats",
        ),
        FeatureTable(
            "user_profile",
            1,
            profile.user_profile,
            "shares of genres, artists, content types, hours",
            incremental=profile.user_profile_incremental,
        ),
        FeatureTable(
            "outcomes",
            2,  # v2 adds item_type: items are (type, id), and the ranker joins impressions to them
            outcomes.outcomes,
            "what followed each impression",
            incremental=outcomes.outcomes_incremental,
        ),
    )
}
