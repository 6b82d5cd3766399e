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

ITEM_KINDS = ("tracks", "episodes", "audiobooks")


class EmptyLake(RuntimeError):
    pass


@dataclass
class Inputs:
    events: ibis.Table  # the lake's columns plus ``ts_s`` (whole seconds since 1970)
    # Tracks, episodes and audiobooks in one shape: id, item_type, duration_ms, creator_id, genres.
    items: ibis.Table
    # The reference time of the run ("now" for decay, windows and trends): the newest event unless given, so the
    # same lake always yields the same tables.
    as_of: dt.datetime
    events_version: int
    events_rows: int
    events_files: list[str]  # relative paths in the events table: what a feature table records it consumed
    # Manifest version of each catalog kind read: metadata (durations, genres, artists) that an incremental
    # update would otherwise mix across versions.
    catalog_versions: dict[str, int]


@dataclass
class Delta:
    """What changed since a table was last built: the events of files it has not consumed, from ``since`` (their
    earliest time) on, and the reference time it was built at."""

    new_events: ibis.Table
    since: dt.datetime
    previous_as_of: dt.datetime


def _with_seconds(engine: Engine, events: ibis.Table) -> ibis.Table:
    """The lake's columns plus ``ts_s``: whole seconds since 1970, what every time computation uses."""
    return events.select(*ARROW_SCHEMA.names).mutate(ts_s=engine.epoch_seconds(events.ts))


def _catalog(engine: Engine, settings: Settings, kind: str) -> ibis.Table:
    return engine.source(kind, LakeTable(settings.catalog_dir / kind).file_paths(), arrow_schema(kind))


def load_inputs(engine: Engine, settings: Settings, as_of: dt.datetime | None = None) -> Inputs:
    table = events_table(settings.lake_dir)
    manifest = table.manifest()
    if manifest.rows == 0:
        raise EmptyLake(
            f"the lake in {settings.lake_dir} has no events: run `playnext events compact` (or `playnext simulate`)"
        )
    events = _with_seconds(engine, engine.source("events", table.file_paths(), ARROW_SCHEMA))
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
        events_rows=manifest.rows, events_files=[f.path for f in manifest.files],
        catalog_versions={k: LakeTable(settings.catalog_dir / k).manifest().version for k in ITEM_KINDS},
    )  # fmt: skip


def load_delta(engine: Engine, settings: Settings, new_files: list[str], previous_as_of: dt.datetime) -> Delta | None:
    """The events of ``new_files``, or None when they hold no events."""
    directory = events_table(settings.lake_dir).directory
    new_events = _with_seconds(engine, engine.source("new_events", [directory / f for f in new_files], ARROW_SCHEMA))
    earliest = new_events.ts.min().to_pyarrow().as_py() if new_files else None
    if earliest is None:
        return None
    since = earliest if earliest.tzinfo else earliest.replace(tzinfo=dt.UTC)
    return Delta(new_events=new_events, since=since, previous_as_of=previous_as_of)
