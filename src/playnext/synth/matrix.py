"""Simulated listening as a listener × track matrix, straight from the listening model, without the lake.

Benchmarks and tests of models at sizes the lake would take minutes to fill (a million listeners) need only the
matrix: the same ``block_events`` that ``playnext simulate`` writes, reduced to play counts in NumPy.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow.compute as pc
import scipy.sparse as sp

from playnext.models.interactions import Interactions, ItemMeta
from playnext.synth.listening import EVENTS_PER_USER_DAY, Samplers, block_events
from playnext.synth.world import GENRES, WorldParams, build_world


def interactions(users: int, tracks: int, days: int, seed: int = 1) -> Interactions:
    """Listener × track play counts of a simulated world (tracks only), with genres and artists as metadata."""
    world = build_world(WorldParams(users=users, tracks=tracks, days=days, seed=seed))
    samplers = Samplers.of(world)
    rng = np.random.default_rng(seed)
    block = max(1, int(2_000_000 / (EVENTS_PER_USER_DAY * days)))
    rows, cols = [], []
    for lo in range(0, users, block):
        ev = block_events(world, samplers, np.arange(lo, min(users, lo + block)), rng, first_event=0)
        plays = ev.filter(pc.and_(pc.equal(ev["type"], "play"), pc.equal(ev["item_type"], "track")))
        rows.append(pc.cast(pc.utf8_slice_codeunits(plays["user_id"], 1), "int64").to_numpy())
        cols.append(pc.cast(pc.utf8_slice_codeunits(plays["item_id"], 1), "int64").to_numpy())
    r, c = np.concatenate(rows), np.concatenate(cols)
    matrix = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(users, tracks))
    matrix.sum_duplicates()
    genre = np.array(GENRES, dtype=object)[world.artist_genre[world.track_artist]]
    meta = ItemMeta(
        item_type=np.full(tracks, "track", dtype=object),
        creator=world.track_artist.astype(str).astype(object),
        genre=genre,
        name=world.track_names.astype(object),
        release_days=np.zeros(tracks),
    )
    seq_ptr = matrix.indptr.astype(np.int64)
    return Interactions(
        matrix=matrix,
        users=np.array([f"u{u}" for u in range(users)], dtype=object),
        items=np.array([f"t{t}" for t in range(tracks)], dtype=object),
        meta=meta,
        seq_ptr=seq_ptr,
        seq_items=matrix.indices.astype(np.int64),
        user_country=np.full(users, "", dtype=object),
        recent_counts=np.zeros(tracks, np.float32),
        as_of=dt.datetime.now(dt.UTC),
    )
