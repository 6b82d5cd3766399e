"""The simulated world's catalog as Arrow tables, one per catalog kind, in the catalog's own schemas."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from playnext.catalog.schema import arrow_schema
from playnext.synth.world import GENRE_LANGUAGE, GENRES, PODCAST_GENRES, World

_EPOCH = dt.date(1970, 1, 1)


def _ids(prefix: str, n: int) -> pa.Array:
    return pc.binary_join_element_wise(pa.scalar(prefix), pc.cast(pa.array(np.arange(n)), pa.string()), "")


def _genres(codes: np.ndarray, names: tuple[str, ...]) -> pa.Array:
    return pa.ListArray.from_arrays(
        pa.array(np.arange(len(codes) + 1, dtype=np.int32)), pa.array(np.array(names)[codes])
    )


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32())


def _language(codes: np.ndarray) -> pa.Array:
    langs = np.array([GENRE_LANGUAGE.get(g, "en") for g in GENRES])
    return pa.array(langs[codes])


def catalog_tables(world: World) -> dict[str, pa.Table]:
    n_artists, n_albums, n_tracks = len(world.artist_genre), len(world.album_artist), len(world.track_artist)
    n_shows, n_episodes, n_books = len(world.show_genre), len(world.episode_show), len(world.book_genre)
    track_genre = world.artist_genre[world.track_artist]
    tables = {
        "artists": {
            "id": _ids("ar", n_artists),
            "name": pa.array(world.artist_names),
            "genres": _genres(world.artist_genre, GENRES),
            "country": pa.nulls(n_artists, pa.string()),
        },
        "albums": {
            "id": _ids("al", n_albums),
            "name": pa.array(world.album_names),
            "genres": _genres(world.artist_genre[world.album_artist], GENRES),
            "artist_id": pc.binary_join_element_wise("ar", pc.cast(pa.array(world.album_artist), pa.string()), ""),
            "release_date": _dates(world.album_release),
        },
        "tracks": {
            "id": _ids("t", n_tracks),
            "name": pa.array(world.track_names),
            "genres": _genres(track_genre, GENRES),
            "artist_id": pc.binary_join_element_wise("ar", pc.cast(pa.array(world.track_artist), pa.string()), ""),
            "album_id": pc.binary_join_element_wise("al", pc.cast(pa.array(world.track_album), pa.string()), ""),
            "duration_ms": pa.array(world.track_duration_ms),
            "release_date": _dates(world.album_release[world.track_album]),
            "language": _language(track_genre),
            "explicit": pa.array(np.zeros(n_tracks, bool)),
        },
        "shows": {
            "id": _ids("sh", n_shows),
            "name": pa.array(world.show_names),
            "genres": _genres(world.show_genre, PODCAST_GENRES),
            "publisher": pa.nulls(n_shows, pa.string()),
            "language": pa.array(["en"] * n_shows),
        },
        "episodes": {
            "id": _ids("ep", n_episodes),
            "name": pc.binary_join_element_wise(
                pa.array(world.show_names[world.episode_show]),
                pa.scalar(" #"),
                pc.cast(pa.array(np.arange(n_episodes)), pa.string()),
                "",
            ),
            "genres": _genres(world.show_genre[world.episode_show], PODCAST_GENRES),
            "show_id": pc.binary_join_element_wise("sh", pc.cast(pa.array(world.episode_show), pa.string()), ""),
            "duration_ms": pa.array(world.episode_duration_ms.astype(np.int64)),
            "release_date": _dates(world.episode_release),
            "language": pa.array(["en"] * n_episodes),
        },
        "audiobooks": {
            "id": _ids("ab", n_books),
            "name": pa.array(world.book_names),
            "genres": _genres(world.book_genre, GENRES),
            "author": pa.array(np.roll(world.artist_names[: max(1, n_books)], 1)[:n_books]),
            "narrator": pa.nulls(n_books, pa.string()),
            "duration_ms": pa.array(world.book_duration_ms.astype(np.int64)),
            "release_date": _dates(np.full(n_books, (world.params.start - _EPOCH).days - 400)),
            "language": _language(world.book_genre),
            "description": pa.nulls(n_books, pa.string()),
        },
    }
    return {
        kind: pa.table(columns).select(arrow_schema(kind).names).cast(arrow_schema(kind))
        for kind, columns in tables.items()
    }
