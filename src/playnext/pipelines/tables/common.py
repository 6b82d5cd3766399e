"""Expressions several feature tables share."""

from __future__ import annotations

import ibis

from playnext.pipelines.inputs import Inputs

LISTENING = ("play", "skip")
DEFAULT_DURATION_MS = 180_000  # for items the catalog does not know: a typical track


def seconds(ts: ibis.TimestampValue) -> ibis.NumericValue:
    """Whole seconds since the epoch, as a float: Spark's epoch seconds are whole, DuckDB's carry the fraction,
    and features must not depend on the engine."""
    return ts.epoch_seconds().floor().cast("float64")


def with_items(inputs: Inputs, events: ibis.Table) -> ibis.Table:
    """Events with their item's duration, creator and genres (null when the catalog lacks the item)."""
    items = inputs.items
    joined = events.left_join(items, [events.item_id == items.id, events.item_type == items.item_type])
    return joined.select(*[events[c] for c in events.columns], items.duration_ms, items.creator_id, items.genres)


def completion(t: ibis.Table) -> ibis.NumericValue:
    """Share of the item played, capped at 1; unknown durations count against a typical track length."""
    duration = t.duration_ms.fill_null(DEFAULT_DURATION_MS).cast("float64")
    return ibis.least(t.ms_played.fill_null(0).cast("float64") / duration, 1.0)


def count_if(condition: ibis.BooleanValue) -> ibis.IntegerValue:
    """How many rows satisfy ``condition``, as int64 on every engine (DuckDB widens integer sums to 128 bits,
    which its Parquet writer stores as doubles)."""
    return condition.ifelse(1, 0).sum().cast("int64")


def total(value: ibis.NumericValue) -> ibis.IntegerValue:
    return value.fill_null(0).sum().cast("int64")
