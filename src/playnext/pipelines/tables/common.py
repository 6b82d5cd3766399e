"""Expressions several feature tables share."""

from __future__ import annotations

import ibis

from playnext.pipelines.inputs import Inputs

LISTENING = ("play", "skip")
DEFAULT_DURATION_MS = 180_000  # for items the catalog does not know: a typical track


def seconds(ts: ibis.TimestampValue) -> ibis.NumericValue:
    """Whole seconds since the epoch, as a float, for timestamps other than the events' (which carry ``ts_s``):
    Spark's epoch seconds are whole, DuckDB's carry the fraction, and features must not depend on the engine."""
    return ts.epoch_seconds().floor().cast("float64")


def with_items(inputs: Inputs, events: ibis.Table, *columns: str) -> ibis.Table:
    """Events with the named item columns (``duration_ms``, ``creator_id``, ``genres``; null when the catalog
    lacks the item): only what a table reads travels through a join of millions of events."""
    items = inputs.items
    joined = events.left_join(items, [events.item_id == items.id, events.item_type == items.item_type])
    return joined.select(*[events[c] for c in events.columns], *[items[c] for c in columns])


def completion(t: ibis.Table) -> ibis.NumericValue:
    """Share of the item played, capped at 1; unknown durations count against a typical track length."""
    duration = t.duration_ms.fill_null(DEFAULT_DURATION_MS).cast("float64")
    return ibis.least(t.ms_played.fill_null(0).cast("float64") / duration, 1.0)


def count_if(table: ibis.Table, condition: ibis.BooleanValue) -> ibis.IntegerValue:
    """How many rows satisfy ``condition``: ``COUNT(*) FILTER (WHERE …)``, a third faster in DuckDB than summing
    a CASE, and int64 on every engine."""
    return table.count(where=condition).cast("int64")


def total(value: ibis.NumericValue) -> ibis.IntegerValue:
    return value.fill_null(0).sum().cast("int64")
