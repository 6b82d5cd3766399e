"""Catalog records, one struct per kind of content, and the Arrow schema each kind is stored under.

Every kind has an ``id`` that events reference as ``item_id``, so one join shape works for all of them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
import pyarrow as pa

from playnext.events.schema import Id, Text, require_printable

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
# "|" separates genres in CSV cells, so it cannot be part of one.
Genre = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^|]+$")]
Genres = Annotated[list[Genre], msgspec.Meta(max_length=32)]
Language = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]  # BCP-47-ish: en, pt-BR
Duration = Annotated[int, msgspec.Meta(gt=0, le=100 * 3600 * 1000)]


class _Record(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    id: Id
    name: Name
    genres: Genres = []

    def __post_init__(self) -> None:
        # Every text field of every kind must be printable; the struct's own field list names them.
        text = tuple(n for n in self.__struct_fields__ if isinstance(getattr(self, n), (str, list)))
        require_printable(self, text)


class Artist(_Record, kw_only=True):
    country: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")] | None = None


class Album(_Record, kw_only=True):
    artist_id: Id
    release_date: dt.date | None = None


class Track(_Record, kw_only=True):
    artist_id: Id
    album_id: Id | None = None
    duration_ms: Duration
    release_date: dt.date | None = None
    language: Language | None = None
    explicit: bool = False


class Show(_Record, kw_only=True):
    publisher: Name | None = None
    language: Language | None = None


class Episode(_Record, kw_only=True):
    show_id: Id
    duration_ms: Duration
    release_date: dt.date | None = None
    language: Language | None = None


class Audiobook(_Record, kw_only=True):
    author: Name
    narrator: Name | None = None
    duration_ms: Duration
    release_date: dt.date | None = None
    language: Language | None = None
    description: Text | None = None


KINDS: dict[str, type[_Record]] = {
    "artists": Artist,
    "albums": Album,
    "tracks": Track,
    "shows": Show,
    "episodes": Episode,
    "audiobooks": Audiobook,
}

_ARROW_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "name": pa.string(),
    "genres": pa.list_(pa.string()),
    "country": pa.string(),
    "artist_id": pa.string(),
    "album_id": pa.string(),
    "show_id": pa.string(),
    "release_date": pa.date32(),
    "duration_ms": pa.int64(),
    "language": pa.string(),
    "explicit": pa.bool_(),
    "publisher": pa.string(),
    "author": pa.string(),
    "narrator": pa.string(),
    "description": pa.string(),
}


def arrow_schema(kind: str) -> pa.Schema:
    return pa.schema([(name, _ARROW_TYPES[name]) for name in KINDS[kind].__struct_fields__])
