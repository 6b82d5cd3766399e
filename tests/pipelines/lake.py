"""A tiny lake whose feature tables can be computed by hand, shared by the pipeline tests."""

from __future__ import annotations

import datetime as dt

import msgspec
import pyarrow as pa

from playnext.catalog.schema import KINDS, arrow_schema
from playnext.catalog.store import catalog_table
from playnext.config import Settings
from playnext.events.lake_events import events_table, write_event_partitions
from playnext.events.schema import ARROW_SCHEMA, Event

T0 = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


def ev(kind: str, event_id: str, user: str, item: str, minutes: float, **extra: object) -> dict:
    item_type = extra.pop("item_type", "track")
    return {"type": kind, "event_id": event_id, "user_id": user, "ts": at(minutes), "item_id": item,
            "item_type": item_type, **extra}  # fmt: skip


def write_events(settings: Settings, records: list[dict]) -> None:
    events = [msgspec.convert(r, Event) for r in records]
    rows = [{k: v for k, v in msgspec.to_builtins(e).items()} for e in events]
    for row, e in zip(rows, events, strict=True):
        row["ts"] = e.ts
    table = pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)
    lake = events_table(settings.lake_dir)
    lake.commit(add=write_event_partitions(lake, table, tag="test"))


def write_catalog(settings: Settings, kind: str, rows: list[dict]) -> None:
    assert kind in KINDS
    table = catalog_table(settings.catalog_dir, kind)
    table.commit(add=[table.write_file(pa.Table.from_pylist(rows, schema=arrow_schema(kind)))])


def tiny_world(settings: Settings) -> None:
    """Two listeners, three tracks by two artists, one episode, one impression.

    u1: plays t1 fully at 0', skips t2 at 4', plays t1 half at 5', saves t1; pauses 2 h; plays t3 at 130'.
    u2: plays t2 fully at 0', plays t3 fully at 4' (same session), adds t3 to a playlist; listens to e1 at 600'.
    One impression of t1 to u1 at -1' (before the first play), which u1 streamed and saved.
    """
    write_catalog(settings, "tracks", [
        {"id": "t1", "name": "One", "artist_id": "a1", "duration_ms": 200_000, "genres": ["rock"]},
        {"id": "t2", "name": "Two", "artist_id": "a1", "duration_ms": 100_000, "genres": ["rock", "indie"]},
        {"id": "t3", "name": "Three", "artist_id": "a2", "duration_ms": 240_000, "genres": ["jazz"]},
    ])  # fmt: skip
    write_catalog(settings, "episodes", [
        {"id": "e1", "name": "Ep", "show_id": "s1", "duration_ms": 1_800_000, "genres": ["news"]},
    ])  # fmt: skip
    write_events(settings, [
        ev("impression", "i1", "u1", "t1", -1, surface="home", position=0, request_id="r1", variant="A",
           propensity=0.5),
        ev("play", "p1", "u1", "t1", 0, ms_played=200_000, reason_end="trackdone"),
        ev("skip", "s1", "u1", "t2", 4, ms_played=5_000),
        ev("play", "p2", "u1", "t1", 5, ms_played=100_000, reason_end="endplay"),
        ev("save", "v1", "u1", "t1", 6),
        ev("play", "p3", "u1", "t3", 130, ms_played=240_000, reason_end="trackdone"),
        ev("play", "p4", "u2", "t2", 0, ms_played=100_000, reason_end="trackdone"),
        ev("play", "p5", "u2", "t3", 4, ms_played=240_000, reason_end="trackdone"),
        ev("playlist_add", "a1", "u2", "t3", 9, playlist_id="pl"),
        ev("play", "p6", "u2", "e1", 600, ms_played=900_000, item_type="episode"),
    ])  # fmt: skip
