"""Training data from the lake, as of a cutoff: the same feature definitions as stage ②, computed in memory.

Training and evaluation must not see the future. With a ``cutoff`` the affinity and co-occurrence expressions of
the pipelines run over the events before it (a temporal holdout cannot reuse tables materialized at "now");
the events from the cutoff on become the holdout. One definition of affinity serves pipelines, training and
evaluation, so the models learn from exactly what the feature tables describe.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from playnext.config import Settings
from playnext.models.interactions import PLAYABLE, Interactions, ItemMeta
from playnext.pipelines.engine import DuckDBEngine
from playnext.pipelines.inputs import Inputs, load_inputs
from playnext.pipelines.tables.affinity import user_item_affinity
from playnext.pipelines.tables.common import completion, with_items
from playnext.pipelines.tables.cooccurrence import item_cooccurrence


@dataclass
class Holdout:
    """What each listener did positively from the cutoff on, with items they had already met removed."""

    users: np.ndarray  # user ids, one row each
    positives: list[np.ndarray]  # item indexes per user
    start: dt.datetime
    end: dt.datetime


def _arrow(engine: DuckDBEngine, expr: ibis.Table) -> pa.Table:
    return engine.backend.con.sql(str(engine.backend.compile(expr))).to_arrow_table()


def cutoff_at_share(settings: Settings, share: float) -> dt.datetime:
    """The time before which ``1 - share`` of the events lie: a global temporal split."""
    if not 0.0 < share < 1.0:
        raise ValueError("the holdout share must be between 0 and 1")
    return events_quantile(settings, 1.0 - share)


def _restricted(inputs: Inputs, cutoff: dt.datetime | None) -> Inputs:
    if cutoff is None:
        return inputs
    e = inputs.events
    return Inputs(
        events=e.filter(e.ts < ibis.literal(cutoff)),
        items=inputs.items,
        as_of=cutoff,
        events_version=inputs.events_version,
        events_rows=inputs.events_rows,
        events_files=inputs.events_files,
        catalog_versions=inputs.catalog_versions,
    )


def _positive(inputs: Inputs, events: ibis.Table, positive_completion: float) -> ibis.Table:
    """Events that show a listener liked an item: a play of most of it, a save, a playlist add, a follow."""
    e = with_items(inputs, events.filter(events.type.isin(("play", "save", "playlist_add"))), "duration_ms")
    liked = (e.type != "play") | (completion(e) >= positive_completion)
    return e.filter(liked)


def load_interactions(
    settings: Settings, cutoff: dt.datetime | None = None, *, with_cooccurrence: bool = True
) -> Interactions:
    p = settings.pipelines
    m = settings.models
    with DuckDBEngine() as engine:
        full = load_inputs(engine, settings)
        inputs = _restricted(full, cutoff)
        cutoff_time = full.as_of if cutoff is None else cutoff
        catalog = _arrow(engine, inputs.items.select("id", "item_type", "creator_id", "genres"))
        names = _arrow(engine, _names(engine, settings))
        # Playable items only: a followed artist or show is affinity, but not something to put in a list.
        aff = user_item_affinity(inputs, p)
        aff = aff.filter(aff.item_type.isin(PLAYABLE))
        aff = _arrow(engine, aff.select("user_id", "item_id", "item_type", "affinity"))
        e = inputs.events
        seq = _positive(inputs, e, m.positive_completion)
        seq = _arrow(
            engine,
            seq.select("user_id", "item_id", "item_type", "ts_s", "event_id").order_by(["user_id", "ts_s", "event_id"]),
        )
        trend_from = cutoff_time - dt.timedelta(days=p.trend_days)
        played = e.filter(e.type.isin(("play", "skip")) & e.item_type.isin(PLAYABLE))
        played = _arrow(engine, played.select("user_id", "item_id", "item_type").distinct())
        recent = e.filter((e.ts >= ibis.literal(trend_from)) & e.type.isin(("play", "save", "playlist_add")))
        recent = _arrow(engine, recent.group_by(["item_id", "item_type"]).aggregate(n=recent.count()))
        country = e.filter(e.country.notnull()).group_by(["user_id", "country"]).aggregate(n=ibis._.count())
        country = _arrow(engine, country)
        cooc = None
        if with_cooccurrence:
            cooc = _arrow(engine, item_cooccurrence(inputs, p).select("item_id", "neighbour_id", "pmi"))
    data = _assemble(catalog, names, aff, seq, recent, country, cooc, cutoff_time, m.min_affinity)
    data.played = _played(data, played)
    return data


def _played(data: Interactions, played: pa.Table) -> sp.csr_matrix:
    """Everything each listener started, liked or not: what "never played" surfaces must avoid."""
    rows = data.user_index(np.asarray(played["user_id"].to_numpy(zero_copy_only=False), dtype=object))
    cols = positions(_key(played["item_id"], played["item_type"]), item_keys(data))
    keep = (rows >= 0) & (cols >= 0)
    ones = np.ones(int(keep.sum()), dtype=np.float32)
    return sp.csr_matrix((ones, (rows[keep], cols[keep])), shape=data.matrix.shape)


def _names(engine: DuckDBEngine, settings: Settings) -> ibis.Table:
    from playnext.catalog.schema import arrow_schema
    from playnext.lake.table import LakeTable

    parts = []
    for kind, item_type in (("tracks", "track"), ("episodes", "episode"), ("audiobooks", "audiobook")):
        t = engine.source(f"names_{kind}", LakeTable(settings.catalog_dir / kind).file_paths(), arrow_schema(kind))
        release = t.release_date if "release_date" in t.columns else ibis.null("date")
        parts.append(t.select("id", item_type=ibis.literal(item_type), name=t.name, release_date=release))
    return ibis.union(*parts)


def _key(ids: pa.ChunkedArray, types: pa.ChunkedArray) -> pa.ChunkedArray:
    """Items are identified by (type, id): an episode and a track may share an id string."""
    return pc.binary_join_element_wise(types, ids, "\x1f")


def positions(values: pa.Array | pa.ChunkedArray, keys: pa.Array) -> np.ndarray:
    """Index of each value in ``keys``; -1 where absent (Arrow answers null, which NumPy would make a float NaN)."""
    return pc.fill_null(pc.index_in(values, value_set=keys), -1).to_numpy(zero_copy_only=False).astype(np.int64)


def item_keys(data: Interactions) -> pa.Array:
    """The (type, id) key of every item of ``data``, in index order."""
    return pc.binary_join_element_wise(
        pa.array(data.meta.item_type.tolist(), pa.string()), pa.array(data.items.tolist(), pa.string()), "\x1f"
    )


def _assemble(
    catalog: pa.Table,
    names: pa.Table,
    aff: pa.Table,
    seq: pa.Table,
    recent: pa.Table,
    country: pa.Table,
    cooc: pa.Table | None,
    as_of: dt.datetime,
    min_affinity: float,
) -> Interactions:
    cat_keys = _key(catalog["id"], catalog["item_type"])
    event_keys = _key(aff["item_id"], aff["item_type"])
    every = pa.chunked_array([*cat_keys.chunks, *event_keys.chunks], type=pa.string())
    keys = pc.unique(every).sort() if len(every) else pa.array([], pa.string())
    n_items = len(keys)
    split = pc.split_pattern(keys, "\x1f", max_splits=1)
    item_type = np.asarray(pc.list_element(split, 0).to_numpy(zero_copy_only=False), dtype=object)
    item_ids = np.asarray(pc.list_element(split, 1).to_numpy(zero_copy_only=False), dtype=object)

    def lookup(k: pa.ChunkedArray | pa.Array) -> np.ndarray:
        return positions(k, keys)

    cat_pos = lookup(cat_keys)
    creator = np.full(n_items, "", dtype=object)
    genre = np.full(n_items, "", dtype=object)
    creator[cat_pos] = np.asarray(catalog["creator_id"].to_numpy(zero_copy_only=False), dtype=object)
    first_genre = pc.fill_null(
        pc.list_element(pc.fill_null(catalog["genres"], pa.scalar([""], catalog["genres"].type)), 0), ""
    )
    genre[cat_pos] = np.asarray(first_genre.to_numpy(zero_copy_only=False), dtype=object)
    name = item_ids.copy()
    release_days = np.full(n_items, np.nan)
    name_pos = lookup(_key(names["id"], names["item_type"]))
    ok = name_pos >= 0
    name[name_pos[ok]] = np.asarray(names["name"].to_numpy(zero_copy_only=False), dtype=object)[ok]
    epoch_days = pc.cast(pc.cast(names["release_date"], pa.date32()), pa.int32())
    rel_days = (as_of.date() - dt.date(1970, 1, 1)).days - pc.fill_null(
        pc.cast(epoch_days, pa.float64()), np.nan
    ).to_numpy()
    release_days[name_pos[ok]] = rel_days[ok]
    meta = ItemMeta(
        item_type=item_type, creator=creator.astype(object), genre=genre, name=name, release_days=release_days
    )

    # Users: everyone with any affinity row, sorted for a stable order.
    aff = aff.filter(pc.greater(aff["affinity"], min_affinity))
    users = np.unique(
        np.concatenate(
            [
                np.asarray(aff["user_id"].to_numpy(zero_copy_only=False), dtype=object),
                np.asarray(seq["user_id"].to_numpy(zero_copy_only=False), dtype=object),
            ]
        )
    )
    users = users.astype(object)
    user_keys = pa.array(users.tolist(), pa.string())
    rows = positions(aff["user_id"], user_keys)
    cols = lookup(_key(aff["item_id"], aff["item_type"]))
    vals = aff["affinity"].to_numpy().astype(np.float32)
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=(len(users), n_items), dtype=np.float32)
    matrix.sum_duplicates()

    seq_rows = positions(seq["user_id"], user_keys)
    seq_items = lookup(_key(seq["item_id"], seq["item_type"]))
    playable = seq_items >= 0
    seq_rows, seq_items = seq_rows[playable], seq_items[playable]  # a saved artist is not a track
    seq_ptr = np.concatenate([[0], np.cumsum(np.bincount(seq_rows, minlength=len(users)))]).astype(np.int64)

    recent_counts = np.zeros(n_items, np.float32)
    if recent.num_rows:
        pos = lookup(_key(recent["item_id"], recent["item_type"]))
        good = pos >= 0
        np.add.at(recent_counts, pos[good], recent["n"].to_numpy()[good].astype(np.float32))

    user_country = np.full(len(users), "", dtype=object)
    if country.num_rows:
        country = country.sort_by([("n", "ascending")])  # the most frequent country is written last and wins
        pos = positions(country["user_id"], user_keys)
        good = pos >= 0
        user_country[pos[good]] = np.asarray(country["country"].to_numpy(zero_copy_only=False), dtype=object)[good]

    cooccurrence = None
    if cooc is not None:
        # Co-occurrence pairs are tracks (sessions and playlists); the table carries no item type.
        a = lookup(_key(cooc["item_id"], pa.array(["track"] * cooc.num_rows, pa.string())))
        b = lookup(_key(cooc["neighbour_id"], pa.array(["track"] * cooc.num_rows, pa.string())))
        good = (a >= 0) & (b >= 0)
        pmi = np.maximum(cooc["pmi"].to_numpy()[good], 0.0).astype(np.float32)
        cooccurrence = sp.csr_matrix((pmi, (a[good], b[good])), shape=(n_items, n_items), dtype=np.float32)
    return Interactions(
        matrix=matrix,
        users=users,
        items=item_ids,
        meta=meta,
        seq_ptr=seq_ptr,
        seq_items=seq_items,
        user_country=user_country,
        recent_counts=recent_counts,
        as_of=as_of,
        cooccurrence=cooccurrence,
    )


def load_holdout(
    settings: Settings, data: Interactions, cutoff: dt.datetime, end: dt.datetime | None = None
) -> Holdout:
    """Positives from ``cutoff`` (until ``end``) of items in the training universe that the listener had not met."""
    with DuckDBEngine() as engine:
        inputs = load_inputs(engine, settings)
        e = inputs.events
        window = e.filter(e.ts >= ibis.literal(cutoff))
        if end is not None:
            window = window.filter(window.ts < ibis.literal(end))
        pos = _positive(inputs, window, settings.models.positive_completion)
        table = _arrow(engine, pos.select("user_id", "item_id", "item_type").distinct())
        last = engine.backend.execute(e.ts.max())
    end_time = end or (last.to_pydatetime() if hasattr(last, "to_pydatetime") else last)
    if end_time.tzinfo is None:
        end_time = end_time.replace(tzinfo=dt.UTC)
    keys = item_keys(data)
    cols = positions(_key(table["item_id"], table["item_type"]), keys)
    users = np.asarray(table["user_id"].to_numpy(zero_copy_only=False), dtype=object)
    known = cols >= 0
    users, cols = users[known], cols[known].astype(np.int64)
    order = np.lexsort((cols, users))
    users, cols = users[order], cols[order]
    uniq, start = np.unique(users, return_index=True)
    groups = np.split(cols, start[1:])
    rows = data.user_index(uniq)
    out_users, out_pos = [], []
    for uid, row, items_u in zip(uniq.tolist(), rows.tolist(), groups, strict=True):
        if row >= 0:
            seen = data.matrix.indices[data.matrix.indptr[row] : data.matrix.indptr[row + 1]]
            items_u = np.setdiff1d(items_u, seen, assume_unique=False)
        if len(items_u):
            out_users.append(uid)
            out_pos.append(items_u)
    return Holdout(users=np.array(out_users, dtype=object), positives=out_pos, start=cutoff, end=end_time)


def events_quantile(settings: Settings, q: float, before: dt.datetime | None = None) -> dt.datetime:
    """The time below which a share ``q`` of the events (before ``before``) lie."""
    with DuckDBEngine() as engine:
        e = load_inputs(engine, settings).events
        if before is not None:
            e = e.filter(e.ts < ibis.literal(before))
        seconds = float(engine.backend.execute(e.ts_s.quantile(q)))
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def load_reactions(settings: Settings, start: dt.datetime, end: dt.datetime) -> pa.Table:
    """Per (listener, item) in [start, end): the outcome columns of ``outcomes``, from interactions alone.

    Where no impressions were logged yet, this is what reward labels are computed from: streamed (a play past the
    stream threshold), saved, skipped (a skip and no stream), minutes played. ``returned`` is unknown (False)."""
    p = settings.pipelines
    with DuckDBEngine() as engine:
        e = load_inputs(engine, settings).events
        w = e.filter((e.ts >= ibis.literal(start)) & (e.ts < ibis.literal(end)) & e.type.isin(("play", "skip", "save")))
        g = w.group_by(["user_id", "item_id", "item_type"]).aggregate(
            streamed=w.count(where=(w.type == "play") & (w.ms_played.fill_null(0) >= p.stream_threshold_ms)) > 0,
            saved=w.count(where=w.type == "save") > 0,
            skips=w.count(where=w.type == "skip"),
            ms_played=ibis.ifelse(w.type == "play", w.ms_played.fill_null(0), 0).sum().cast("int64"),
        )
        g = g.select(
            "user_id",
            "item_id",
            "item_type",
            "streamed",
            "saved",
            skipped=(g.skips > 0) & ~g.streamed,
            returned=ibis.literal(False),
            ms_played=g.ms_played,
        )
        return _arrow(engine, g)


def load_impression_outcomes(settings: Settings, start: dt.datetime, end: dt.datetime) -> pa.Table:
    """Logged impressions shown in [start, end) with what followed each, as of ``end`` (the ``outcomes``
    definition of stage ②, computed over the events before ``end`` so no label sees past it)."""
    from playnext.pipelines.tables.outcomes import outcomes

    with DuckDBEngine() as engine:
        inputs = _restricted(load_inputs(engine, settings), end)
        o = outcomes(inputs, settings.pipelines)
        o = o.filter(o.ts >= ibis.literal(start))
        return _arrow(engine, o.order_by(["request_id", "position"]))


def item_index_of(data: Interactions, table: pa.Table) -> np.ndarray:
    """Item index of each row's (item_type, item_id); -1 when the item is outside ``data``."""
    return positions(_key(table["item_id"], table["item_type"]), item_keys(data))
