"""What every transform reads: the events, the playable items with their metadata, and the run's reference time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
from ibis import _

from playnext.catalog.schema import arrow_schema
from playnext.config import Settings
from playnext.events.lake_events import events_table
from playnext.events.schema import ARROW_SCHEMA
from playnext.lake.table import LakeTable
from playnext.pipelines.engine import Engine


class EmptyLake(RuntimeError):
    pass


@dataclass
class Inputs:
    events: ibis.Table
    # Tracks, episodes and audiobooks in one shape: id, item_type, duration_ms, creator_id, genres.
    items: ibis.Table
    # The reference time of the run ("now" for decay, windows and trends): the newest event unless given, so the
    # same lake always yields the same tables.
    as_of: dt.datetime
    events_version: int
    events_rows: int


def _catalog(engine: Engine, settings: Settings, kind: str) -> ibis.Table:
    return engine.source(kind, LakeTable(settings.catalog_dir / kind).file_paths(), arrow_schema(kind))


def load_inputs(engine: Engine, settings: Settings, as_of: dt.datetime | None = None) -> Inputs:
    table = events_table(settings.lake_dir)
    manifest = table.manifest()
    if manifest.rows == 0:
        raise EmptyLake(
            f"the lake in {settings.lake_dir} has no events: run `playnext events compact` (or `playnext simulate`)"
        )
    events = engine.source("events", table.file_paths(), ARROW_SCHEMA).select(*ARROW_SCHEMA.names)
    tracks = _catalog(engine, settings, "tracks").select(
        "id", item_type=ibis.literal("track"), duration_ms=_.duration_ms, creator_id=_.artist_id, genres=_.genres
    )
    episodes = _catalog(engine, settings, "episodes").select(
        "id", item_type=ibis.literal("episode"), duration_ms=_.duration_ms, creator_id=_.show_id, genres=_.genres
    )
    books = _catalog(engine, settings, "audiobooks").select(
        "id", item_type=ibis.literal("audiobook"), duration_ms=_.duration_ms, creator_id=_.author, genres=_.genres
    )
    items = ibis.union(tracks, episodes, books)
    if as_of is None:
        newest = events.ts.max().to_pyarrow().as_py()
        as_of = newest if newest.tzinfo else newest.replace(tzinfo=dt.UTC)
    return Inputs(
        events=events, items=items, as_of=as_of.astimezone(dt.UTC), events_version=manifest.version,
        events_rows=manifest.rows,
    )  # fmt: skip


def epoch_s(moment: dt.datetime) -> float:
    return moment.timestamp()
