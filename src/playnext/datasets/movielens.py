"""MovieLens-100K as playnext events and catalog, from the copy inside the ``recbole`` wheel.

The data is never downloaded and never committed: ``pip install --no-deps recbole==1.2.1`` puts the three files
in site-packages, and this module reads them from there. Ratings become listening behaviour with the same meaning
a streaming service gives it: 4 and 5 stars are a full play (5 adds a save), 3 stars a half play, 1 and 2 stars a
skip. A positive (a play of ``positive_completion`` or more, or a save) is then exactly "rated 4 or more", the
convention of published MovieLens results. Movies are catalog tracks of two hours; a movie's first genre stands in
for its creator, since MovieLens names no directors.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from playnext.catalog.schema import arrow_schema
from playnext.catalog.store import catalog_table
from playnext.config import Settings
from playnext.events.lake_events import events_table, write_event_partitions
from playnext.events.schema import ARROW_SCHEMA

MOVIE_MS = 2 * 3600 * 1000
DATASETS = ("movielens-100k",)


class DatasetMissing(RuntimeError):
    pass


@dataclass
class DatasetImport:
    name: str
    users: int
    items: int
    ratings: int
    events: int


def movielens_dir() -> Path:
    try:
        import recbole
    except ImportError:
        raise DatasetMissing(
            "MovieLens-100K ships inside the recbole wheel: pip install --no-deps recbole==1.2.1"
        ) from None
    path = Path(recbole.__file__).parent / "dataset_example" / "ml-100k"
    if not (path / "ml-100k.inter").is_file():
        raise DatasetMissing(f"{path} has no ml-100k.inter; reinstall recbole==1.2.1")
    return path


def _read(path: Path) -> pa.Table:
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(autogenerate_column_names=False),
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=pacsv.ConvertOptions(strings_can_be_null=False),
    )
    return table.rename_columns([c.split(":")[0] for c in table.column_names])


def movielens_events(ratings: pa.Table) -> pa.Table:
    user = pc.cast(ratings["user_id"], pa.string())
    item = pc.cast(ratings["item_id"], pa.string())
    rating = ratings["rating"].to_numpy()
    seconds = ratings["timestamp"].to_numpy().astype(np.int64)
    base = {
        "user_id": pc.binary_join_element_wise("ml", user, ""),
        "item_id": pc.binary_join_element_wise("m", item, ""),
    }
    play = rating >= 3
    kinds = np.where(play, "play", "skip")
    ms = np.where(rating >= 4, MOVIE_MS, np.where(rating == 3, MOVIE_MS // 2, MOVIE_MS // 10)).astype(np.int64)
    reason = np.where(rating >= 4, "trackdone", "endplay")
    ids = pc.binary_join_element_wise("ml-", base["user_id"], "-", base["item_id"], "")
    first = {
        "event_id": ids,
        "type": kinds,
        "user_id": base["user_id"],
        "item_id": base["item_id"],
        "ts": seconds * 1_000_000,
        "ms_played": ms,
        "reason_end": np.where(play, reason, None),
    }
    fives = rating == 5
    saves = {
        "event_id": pc.binary_join_element_wise(pc.filter(ids, pa.array(fives)), "-save", ""),
        "type": np.full(int(fives.sum()), "save"),
        "user_id": pc.filter(base["user_id"], pa.array(fives)),
        "item_id": pc.filter(base["item_id"], pa.array(fives)),
        "ts": (seconds[fives] + 1) * 1_000_000,
        "ms_played": np.full(int(fives.sum()), None),
        "reason_end": np.full(int(fives.sum()), None),
    }
    parts = []
    for cols in (first, saves):
        rows = len(cols["type"])
        arrays = {}
        for field in ARROW_SCHEMA:
            if field.name in cols:
                value = cols[field.name]
                arrays[field.name] = (
                    pa.array(value, type=field.type)
                    if not isinstance(value, pa.Array | pa.ChunkedArray)
                    else pc.cast(value, field.type)
                )
            elif field.name == "item_type":
                arrays[field.name] = pa.array(["track"] * rows, field.type)
            elif field.name == "country":
                arrays[field.name] = pa.array(["US"] * rows, field.type)
            else:
                arrays[field.name] = pa.nulls(rows, field.type)
        parts.append(pa.table(arrays, schema=ARROW_SCHEMA))
    return pa.concat_tables(parts)


def movielens_tracks(items: pa.Table) -> pa.Table:
    genres = pc.split_pattern(pc.utf8_trim_whitespace(items["class"]), " ")
    first = pc.list_element(genres, 0)
    year = pc.cast(items["release_year"], pa.string())
    # Some years read "unkonwn" in the source: no release date rather than a made-up one.
    release = pc.strptime(pc.binary_join_element_wise(year, "-01-01", ""), "%Y-%m-%d", "s", error_is_null=True)
    n = items.num_rows
    table = pa.table(
        {
            "id": pc.binary_join_element_wise("m", pc.cast(items["item_id"], pa.string()), ""),
            "name": pc.if_else(pc.equal(pc.utf8_length(items["movie_title"]), 0), "untitled", items["movie_title"]),
            "genres": genres,
            "artist_id": pc.binary_join_element_wise("genre-", first, ""),
            "album_id": pa.nulls(n, pa.string()),
            "duration_ms": pa.array(np.full(n, MOVIE_MS, np.int64)),
            "release_date": pc.cast(release, pa.date32()),
            "language": pa.array(["en"] * n),
            "explicit": pa.array(np.zeros(n, bool)),
        }
    )
    return table.select(arrow_schema("tracks").names).cast(arrow_schema("tracks"))


def import_movielens(settings: Settings, *, replace: bool = False) -> DatasetImport:
    """Write MovieLens-100K into the lake and the catalog in one commit each; refuses a non-empty lake unless
    ``replace``, like ``playnext simulate``."""
    from playnext.synth.simulate import LakeNotEmpty

    source = movielens_dir()
    ratings = _read(source / "ml-100k.inter")
    items = _read(source / "ml-100k.item")
    table = events_table(settings.lake_dir)
    current = table.manifest()
    if current.files and not replace:
        raise LakeNotEmpty(
            f"the lake in {settings.lake_dir} already holds {current.rows:,} events; pass --replace to swap them"
        )
    events = movielens_events(ratings)
    added = write_event_partitions(table, events, tag="ml100k")
    tracks = catalog_table(settings.catalog_dir, "tracks")
    old = tracks.manifest()
    tracks.commit(add=[tracks.write_file(movielens_tracks(items))], remove=[f.path for f in old.files])
    table.commit(
        add=added,
        remove=[f.path for f in current.files],
        meta={"dataset": "movielens-100k"},
        expect_version=current.version,
    )
    return DatasetImport(
        name="movielens-100k",
        users=len(pc.unique(ratings["user_id"])),
        items=items.num_rows,
        ratings=ratings.num_rows,
        events=events.num_rows,
    )


def ml_epoch(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)
