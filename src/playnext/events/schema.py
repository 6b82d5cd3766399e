"""The event schema: one tagged union, validated by msgspec at C speed.

Every event carries a client-made ``event_id`` so that a retried request never counts a play twice. Fields are
bounded (length, range, no control characters) because the log is forever: a hostile or buggy client must not be
able to make an event that breaks compaction or a later reader. Unknown fields are rejected rather than dropped,
so a typo (``ms_playd``) is a clear error instead of silently lost data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal

import msgspec
import pyarrow as pa

# Lengths are checked by msgspec; printability (no NUL, newline, escape or other control characters: ids end up
# in file names, SQL results and terminals) by ``__post_init__`` with ``str.isprintable``, because a msgspec
# ``pattern`` runs Python's regex engine per field and made decoding five times slower.
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
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


def require_printable(record: msgspec.Struct, names: tuple[str, ...]) -> None:
    """Raise (msgspec turns it into a ValidationError) if a text field, or a string in a list field, has control
    or other non-printable characters. One ``isprintable`` over the joined values keeps the common case cheap."""
    values = [getattr(record, name) for name in names]
    flat = [x for v in values if v is not None for x in (v if isinstance(v, list) else (v,))]
    if "".join(flat).isprintable():
        return
    for name, value in zip(names, values, strict=True):
        items = value if isinstance(value, list) else [value]
        if any(x is not None and not x.isprintable() for x in items):
            raise ValueError(f"`{name}` holds control or non-printable characters")


class _Event(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True, frozen=True):
    event_id: Id
    user_id: Id
    ts: Timestamp
    item_id: Id
    item_type: ItemType
    country: Country | None = None
    # Links an interaction to the impression (served list) that led to it, when the client knows it.
    request_id: Id | None = None

    # Text fields that must be printable; subclasses add their own.
    _text: ClassVar[tuple[str, ...]] = ("event_id", "user_id", "item_id", "request_id")

    def __post_init__(self) -> None:
        # The hot path of ingest: one concatenation and one C-level scan per event; names a field only on failure.
        if not (
            self.event_id + self.user_id + (self.item_id or "") + (self.request_id or "") + self._extra()
        ).isprintable():
            require_printable(self, self._text)

    def _extra(self) -> str:
        return ""


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

    _text: ClassVar[tuple[str, ...]] = (*_Event._text, "playlist_id")

    def _extra(self) -> str:
        return self.playlist_id


class Search(_Event, tag="search", kw_only=True):
    query: Text
    # A search need not end in a click on a result.
    item_id: Id | None = None  # type: ignore[assignment]
    item_type: ItemType | None = None  # type: ignore[assignment]

    _text: ClassVar[tuple[str, ...]] = (*_Event._text, "query")

    def _extra(self) -> str:
        return self.query


class Impression(_Event, tag="impression"):
    surface: Label
    position: Annotated[int, msgspec.Meta(ge=0, le=10_000)]
    request_id: Id  # type: ignore[assignment]
    variant: Label | None = None
    # Probability with which the serving policy showed this item here; needed for off-policy evaluation.
    propensity: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] | None = None

    _text: ClassVar[tuple[str, ...]] = (*_Event._text, "surface", "variant")

    def _extra(self) -> str:
        return self.surface + (self.variant or "")


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
BATCH_DECODER = msgspec.json.Decoder(list[Event])
_ENCODER = msgspec.json.Encoder()


def encode_lines(events: Sequence[msgspec.Struct]) -> bytes:
    """Canonical NDJSON of validated events (or records encoding as events): what the log stores and the lake
    reader parses."""
    return _ENCODER.encode_lines(events)
