"""Exposure records: one log line per list a surface showed one viewer, unfolded into ``impression`` events when
the log is compacted.

Every item a surface shows is an impression in the lake (position, surface, propensity, variant), and a surface
answer shows 10-60 items. Logged as one line each, a Discover Weekly answer wrote 30 lines (8.4 KB) that repeated
the request id, listener, time and variant 30 times, and encoding them cost the serving process about as much as
the rest of the answer. So the log holds one ``exposure`` line per shown list and viewer (about 0.7 KB), and
compaction unfolds each into the impressions it stands for, in Arrow (no per-row Python). The lake, the
pipelines and every reader see ordinary ``impression`` rows, ids included: the item at position ``p`` is
``<exposure event_id>-<p>``.

Exposures are made by the server only: the collector's schema (``schema.Event``) has no ``exposure`` type, so a
client cannot post one.
"""

from __future__ import annotations

import datetime as dt
import io

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from playnext.events.schema import ARROW_SCHEMA


class Exposure(msgspec.Struct, tag_field="type", tag="exposure", frozen=True, gc=False):
    """Untracked by the garbage collector: many wait in the log's buffer at a time, and each collection would
    walk them all."""

    request_id: str
    surface: str
    variant: str | None
    propensity: float | None
    event_id: str
    user_id: str
    ts: dt.datetime
    # One per item; the item types are ``ItemType``s. A surface's are already JSON arrays (``surfaces.page``).
    items: list[str] | msgspec.Raw
    # None when every item is a track (``unfold`` types them): most shown lists are, and a Daily Mix answer's
    # lines were a third ``"track"``s, written, checksummed and synced by the log's writer for every answer.
    item_types: list[str] | msgspec.Raw | None
    first_position: int = 0  # Home numbers its cards down the page, across shelves


# What a log segment's lines parse to: the lake's columns plus an exposure's own.
LOG_SCHEMA = pa.schema(
    [*ARROW_SCHEMA, pa.field("items", pa.list_(pa.string())), pa.field("item_types", pa.list_(pa.string())),
     pa.field("first_position", pa.int32())]
)  # fmt: skip
_PARSE = pj.ParseOptions(explicit_schema=LOG_SCHEMA, unexpected_field_behavior="error")
_CARRIED = ("user_id", "ts", "request_id", "surface", "variant", "propensity")  # from the exposure to each row


class BadExposure(ValueError):
    pass


def _item_types(types: pa.ListArray, typed: np.ndarray) -> pa.Array:
    """Each shown item's type: its exposure's ``item_types`` where it has them (``typed``, per item), else track."""
    given = pc.list_flatten(types)  # a null list adds nothing
    if typed.all():
        return given
    return pc.replace_with_mask(pa.repeat(pa.scalar("track"), len(typed)), pa.array(typed), given)


def parse_lines(payload: bytes) -> pa.Table:
    """NDJSON log lines as lake rows (``ARROW_SCHEMA``): events as they are, each exposure as its impressions."""
    if not payload:
        return ARROW_SCHEMA.empty_table()
    return unfold(pj.read_json(io.BytesIO(payload), parse_options=_PARSE))


def unfold(table: pa.Table) -> pa.Table:
    """Rows in ``LOG_SCHEMA`` to rows in ``ARROW_SCHEMA``."""
    shown_mask = pc.equal(table["type"], "exposure")
    events = table.filter(pc.invert(shown_mask)).select(ARROW_SCHEMA.names)
    shown = table.filter(shown_mask)
    if not shown.num_rows:
        return events
    items = pc.fill_null(shown["items"], pa.scalar([], pa.list_(pa.string()))).combine_chunks()
    types = shown["item_types"].combine_chunks()
    typed = pc.is_valid(types)
    if not pc.all(pc.or_kleene(pc.invert(typed), pc.equal(pc.list_value_length(items),
                                                          pc.list_value_length(types)))).as_py():  # fmt: skip
        raise BadExposure("an exposure's items and item_types differ in length")
    parent = pc.list_parent_indices(items).to_numpy()
    offsets = items.offsets.to_numpy()
    first = pc.fill_null(shown["first_position"], 0).to_numpy()
    position = first[parent] + (np.arange(len(parent)) - (offsets[parent] - offsets[0]))
    rows = shown.select(["event_id", *_CARRIED]).take(pa.array(parent))
    n = len(parent)
    columns = {
        "event_id": pc.binary_join_element_wise(rows["event_id"], pa.array(position).cast(pa.string()), "-"),
        "type": pa.repeat(pa.scalar("impression"), n),
        "item_id": pc.list_flatten(items),
        "item_type": _item_types(types, typed.to_numpy(zero_copy_only=False)[parent]),
        "position": pa.array(position, pa.int32()),
        **{name: rows[name] for name in _CARRIED},
    }
    impressions = pa.table(
        [columns.get(f.name, pa.nulls(n, f.type)) for f in ARROW_SCHEMA], schema=ARROW_SCHEMA
    )  # fmt: skip
    return pa.concat_tables([events, impressions])
