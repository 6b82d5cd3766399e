"""A small simulated world with closed-loop impressions, for incremental and engine-parity tests."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from playnext.config import Settings
from playnext.events.lake_events import events_table, write_event_partitions
from playnext.events.schema import ARROW_SCHEMA
from playnext.synth.respond import Listeners
from playnext.synth.simulate import simulate
from playnext.synth.world import WorldParams, load_world

START = dt.date(2026, 10, 1)
DAYS = 11


def _impressions(settings: Settings, rng: np.random.Generator) -> pa.Table:
    listeners = Listeners(load_world(settings.synth_dir), seed=3)
    rows = []
    for k in range(60):
        user = f"u{rng.integers(0, 80)}"
        at = dt.datetime.combine(START, dt.time(), dt.UTC) + dt.timedelta(minutes=int(rng.integers(0, DAYS * 1440)))
        items = [f"t{i}" for i in rng.integers(0, 800, 8)]
        for e in listeners.respond_events(user, items, request_id=f"req{k}", surface="home", at=at,
                                          propensities=[0.5] * 8):  # fmt: skip
            row = msgspec.to_builtins(e)
            row["ts"] = e.ts
            rows.append(row)
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)


def two_part_world(root: Path) -> tuple[Settings, pa.Table]:
    """A lake holding the first part of a world's history, and the rest (the last day, plus late events for
    earlier days) to add later."""
    settings = Settings(data_dir=root / "data")
    simulate(settings, WorldParams(users=80, tracks=800, days=DAYS, seed=21, start=START))
    lake = events_table(settings.lake_dir)
    everything = pa.concat_tables([lake.read(), _impressions(settings, np.random.default_rng(5))]).select(
        ARROW_SCHEMA.names
    )
    rng = np.random.default_rng(9)
    last_day = dt.datetime.combine(START + dt.timedelta(days=DAYS - 1), dt.time(), dt.UTC)
    dates = pc.cast(everything["ts"], pa.date32()).to_numpy(zero_copy_only=False)
    late = np.isin(dates, [np.datetime64(START + dt.timedelta(days=4)), np.datetime64(START + dt.timedelta(days=8))])
    later = (everything["ts"].to_numpy(zero_copy_only=False) >= np.datetime64(last_day.replace(tzinfo=None))) | (
        late & (rng.random(everything.num_rows) < 0.05)
    )
    first, rest = everything.filter(pa.array(~later)), everything.filter(pa.array(later))
    current = lake.manifest()
    lake.commit(add=write_event_partitions(lake, first, tag="first"), remove=[f.path for f in current.files])
    return settings, rest


def add_events(settings: Settings, rows: pa.Table) -> None:
    lake = events_table(settings.lake_dir)
    lake.commit(add=write_event_partitions(lake, rows, tag="more"))


def copy_world(settings: Settings, to: Path) -> Settings:
    shutil.copytree(settings.data_dir, to / "data")
    shutil.rmtree(to / "data" / "features", ignore_errors=True)
    return settings.model_copy(update={"data_dir": to / "data"})
