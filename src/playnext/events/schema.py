"""The event schema: one tagged union, validated by msgspec at C speed.

Every event carries a client-made ``event_id`` so that a retried request never counts a play twice. Fields are
bounded (length, range, no control characters) because the log is forever: a hostile or buggy client must not be
able to make an event that breaks compaction or a later reader. Unknown fields are rejected rather than dropped,
so a typo (``ms_playd``) is a clear error instead of silently lost data.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
import pyarrow as pa

# Printable text without control characters (NUL, newlines, escapes): ids end up in file names of reports,
# SQL results and terminals.
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=_PRINTABLE)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=_PRINTABLE)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=_PRINTABLE)]
Timestamp = Annotated[dt.datetime, msgspec.Meta(tz=True)]
Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
# A play longer than a day is a client bug (a paused player that kept counting).
MsPlayed = Annotated[int, msgspec.Meta(ge=0, le=24 * 3600 * 1000)]

ItemType = Literal["track", "episode", "audiobook", "artist", "playlist"]
ITEM_TYPES: tuple[str, ...] = ItemType.__args__  # type: ignore[attr-defined]

# Why a play ended; the values most players already report.
ReasonEnd = Literal[
    "trackdone", "fwdbtn", "backbtn", "endplay", "logout", "remote", "unexpected-exit", "clickrow", "unknown"
]


class _Event(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True, frozen=True):
    event_id: Id
    user_id: Id
    ts: Timestamp
    item_id: Id
    item_type: ItemType
    country: Country | None = None
    # Links an interaction to the impression (served list) that led to it, when the client knows it.
    request_id: Id | None = None


class Play(_Event, tag="play"):
    ms_played: MsPlayed
    reason_end: ReasonEnd = "unknown"


class Skip(_Event, tag="skip"):
    ms_played: MsPlayed | None = None


class Save(_Event, tag="save"):
    pass


class Unsave(_Event, tag="unsave"):
    pass


class Follow(_Event, tag="follow"):
    pass


class PlaylistAdd(_Event, tag="playlist_add"):
    playlist_id: Id


class Search(_Event, tag="search", kw_only=True):
    query: Text
    # A search need not end in a click on a result.
    item_id: Id | None = None  # type: ignore[assignment]
    item_type: ItemType | None = None  # type: ignore[assignment]


class Impression(_Event, tag="impression"):
    surface: Label
    position: Annotated[int, msgspec.Meta(ge=0, le=10_000)]
    request_id: Id  # type: ignore[assignment]
    variant: Label | None = None
    # Probability with which the serving policy showed this item here; needed for off-policy evaluation.
    propensity: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] | None = None


Event = Play | Skip | Save | Unsave | Follow | PlaylistAdd | Search | Impression
EVENT_TYPES: tuple[str, ...] = tuple(t.__struct_config__.tag for t in Event.__args__)  # type: ignore[attr-defined]

# The lake's one wide table: every event type's fields, null where a type lacks one. A single table keeps the
# pipelines' scans simple and lets DuckDB prune by ``type`` and by the date partition.
ARROW_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("type", pa.string()),
        ("user_id", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("item_id", pa.string()),
        ("item_type", pa.string()),
        ("country", pa.string()),
        ("request_id", pa.string()),
        ("ms_played", pa.int64()),
        ("reason_end", pa.string()),
        ("playlist_id", pa.string()),
        ("query", pa.string()),
        ("surface", pa.string()),
        ("position", pa.int32()),
        ("variant", pa.string()),
        ("propensity", pa.float64()),
    ]
)

EVENT_DECODER = msgspec.json.Decoder(Event)
_ENCODER = msgspec.json.Encoder()


def encode_lines(events: list[Event]) -> bytes:
    """Canonical NDJSON of validated events: what the log stores and the lake reader parses."""
    return _ENCODER.encode_lines(events)


def describe_error(exc: msgspec.ValidationError | msgspec.DecodeError) -> str:
    return str(exc)
