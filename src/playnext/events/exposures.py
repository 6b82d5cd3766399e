"""Exposure records: one log line per list a surface showed one viewer, unfolded into ``impression`` events when
the log is compacted.

Every item a surface shows is an impression in the lake (position, surface, propensity, variant), and a surface
answer shows 10-60 items. Logged as one line each, a Discover Weekly answer wrote 30 lines (8.4 KB) that repeated
the request id, listener, time and variant 30 times, and encoding them cost the serving process about as much as
the rest of the answer. So the log holds one ``exposure`` line per shown list and viewer (about 0.7 KB), and
compaction unfolds each into the impressions it stands for, in Arrow (no per-row Python). The lake, the
pipelines and every reader see ordinary ``impression`` rows, ids included: the item at position ``p`` is
``<exposure event_id>-<p>``.

An answer of several lists for one viewer (Daily Mix's mixes) is one line too, its lists' items one after another
and their lengths in ``lists``: the item at position ``p`` of list ``k`` is ``<exposure event_id>.<k>-<p>``. Logged
as a line per mix, a Daily Mix answer's six lines repeated the request, listener, time and variant six times: 2.2 KB
an answer, against 1.2 KB as one line. Every answer's lines go to the log's writer, the one process all workers
share, and what they cost grows with their bytes: not logging a Daily Mix answer at all (a throwaway measurement)
spared its worker about 5 µs of CPU and the writer 2.5-3 µs; as one line, the writer's share went from 2.6-3.2 to
1.4-1.8 µs and the workers' from 55.6-59.4 to 53.3-56.8 µs (README, *Benchmarks*).

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
    # None for one list; else the lengths of the lists ``items`` holds one after another (the module's docstring)
    lists: list[int] | None = None


# What a log segment's lines parse to: the lake's columns plus an exposure's own.
LOG_SCHEMA = pa.schema(
    [*ARROW_SCHEMA, pa.field("items", pa.list_(pa.string())), pa.field("item_types", pa.list_(pa.string())),
     pa.field("first_position", pa.int32()), pa.field("lists", pa.list_(pa.int32()))]
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


def _in_lists(lists: pa.ListArray, counts: np.ndarray, parent: np.ndarray, base: np.ndarray, position: np.ndarray,
              suffix: pa.Array) -> tuple[pa.Array, pa.Array]:  # fmt: skip
    """Each shown item's impression id after its line's id, and what joins the two: ``.`` and ``<k>-<p>`` for an
    item of a line of several lists (``k`` its list, ``p`` its position in it: ``base``, its line's first
    position, and its place in the list), else ``-`` and ``suffix`` (its position). ``position`` becomes ``p``
    for those items, in place; ``counts`` is each line's number of items."""
    lengths = pc.list_flatten(lists).to_numpy(zero_copy_only=False).astype(np.int64)  # a null list adds none
    owner = pc.list_parent_indices(lists).to_numpy()  # the line each length is of
    several = pc.is_valid(lists).to_numpy(zero_copy_only=False)
    if (lengths < 0).any() or not np.array_equal(np.bincount(owner, lengths, len(counts))[several],
                                                 counts[several]):  # fmt: skip
        raise BadExposure("an exposure's lists do not add up to its items")
    starts = lists.offsets.to_numpy()
    k = np.arange(len(lengths)) - (starts[owner] - starts[0])  # each list's place in its line
    listed = several[parent]  # the items of such lines, in order: their lists' items one after another
    of = np.repeat(np.arange(len(lengths)), lengths)  # each such item's list
    position[listed] = base[listed] + np.arange(len(of)) - (np.cumsum(lengths) - lengths)[of]
    inner = pc.binary_join_element_wise(pa.array(k[of]).cast(pa.string()),
                                        pa.array(position[listed]).cast(pa.string()), "-")  # fmt: skip
    mask = pa.array(listed)
    between = pc.replace_with_mask(pa.repeat(pa.scalar("-"), len(listed)), mask, pa.repeat(pa.scalar("."), len(of)))
    return pc.replace_with_mask(suffix, mask, inner), between


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
    base = first[parent]
    position = base + (np.arange(len(parent)) - (offsets[parent] - offsets[0]))
    rows = shown.select(["event_id", *_CARRIED]).take(pa.array(parent))
    n = len(parent)
    suffix, between = pa.array(position).cast(pa.string()), pa.scalar("-")
    lists = shown["lists"].combine_chunks()
    if lists.null_count < len(lists):  # some lines stand for several lists
        suffix, between = _in_lists(lists, np.diff(offsets), parent, base, position, suffix)
    columns = {
        "event_id": pc.binary_join_element_wise(rows["event_id"], suffix, between),
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
