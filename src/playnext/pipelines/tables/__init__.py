"""The feature tables. Each is a function from the run's inputs to one Ibis expression, and nothing else: no engine,
no files. The registry below is what ``playnext pipeline run --tables`` chooses from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ibis

from playnext.config import PipelineSettings
from playnext.pipelines.inputs import Inputs
from playnext.pipelines.tables import affinity, cooccurrence, outcomes, profile, sessions, stats


@dataclass(frozen=True)
class FeatureTable:
    name: str
    version: int  # bumped when the table's meaning or columns change
    build: Callable[[Inputs, PipelineSettings], ibis.Table]
    doc: str


TABLES: dict[str, FeatureTable] = {
    t.name: t
    for t in (
        FeatureTable("user_item_affinity", 1, affinity.user_item_affinity, "confidence per user and item"),
        FeatureTable("sessions", 1, sessions.sessions, "listening sessions split by inactivity"),
        FeatureTable("item_cooccurrence", 1, cooccurrence.item_cooccurrence, "top-K neighbours per item by PMI"),
        FeatureTable("item_stats", 1, stats.item_stats, "popularity, trend, skip and completion per item"),
        FeatureTable("artist_stats", 1, stats.artist_stats, "the same per artist (creator)"),
        FeatureTable("user_profile", 1, profile.user_profile, "shares of genres, artists, content types, hours"),
        FeatureTable("outcomes", 1, outcomes.outcomes, "what followed each impression"),
    )
}
