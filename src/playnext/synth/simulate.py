"""``playnext simulate``: a world's catalog, listening history and ground truth, written straight to the lake.

Events bypass the log (they are history, not traffic) but land through the same lake commit as compaction, in
one manifest rename at the end: a simulation killed half-way leaves the lake as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from playnext.catalog.store import catalog_table
from playnext.config import Settings
from playnext.events.lake_events import events_table, write_event_partitions
from playnext.synth.catalog import catalog_tables
from playnext.synth.listening import EVENTS_PER_USER_DAY, Samplers, block_events
from playnext.synth.world import WorldParams, build_world, save_world

# Events per block: bounds memory (about 1 KB per event while a block is built) whatever the size of the run.
BLOCK_EVENTS = 2_000_000


class LakeNotEmpty(RuntimeError):
    pass


@dataclass
class SimulationResult:
    users: int
    tracks: int
    events: int
    files: int
    seconds: float


def simulate(
    settings: Settings,
    params: WorldParams,
    *,
    replace: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    t0 = time.perf_counter()
    table = events_table(settings.lake_dir)
    current = table.manifest()
    if current.files and not replace:
        raise LakeNotEmpty(
            f"the lake in {settings.lake_dir} already holds {current.rows:,} events; "
            "pass --replace to swap them (and the catalog) for a new simulated world"
        )
    world = build_world(params)
    samplers = Samplers.of(world)
    rng = np.random.default_rng(params.seed + 1)
    block = max(1, int(BLOCK_EVENTS / (EVENTS_PER_USER_DAY * params.days)))
    added = []
    n_events = 0
    for lo in range(0, params.users, block):
        users = np.arange(lo, min(params.users, lo + block))
        events = block_events(world, samplers, users, rng, first_event=n_events)
        added += write_event_partitions(table, events, tag=f"sim{params.seed}-{lo:09d}")
        n_events += events.num_rows
        if on_progress:
            on_progress(int(users[-1]) + 1, params.users)
    for kind, rows in catalog_tables(world).items():
        kind_table = catalog_table(settings.catalog_dir, kind)
        old = kind_table.manifest()
        kind_table.commit(add=[kind_table.write_file(rows)], remove=[f.path for f in old.files])
    save_world(world, settings.synth_dir)
    table.commit(
        add=added,
        remove=[f.path for f in current.files],
        meta={"simulation": {"seed": params.seed, "users": params.users, "tracks": params.tracks, "days": params.days}},
        expect_version=current.version,
    )
    return SimulationResult(
        users=params.users,
        tracks=params.tracks,
        events=n_events,
        files=len(added),
        seconds=time.perf_counter() - t0,
    )
