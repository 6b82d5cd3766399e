"""The lake's ``events`` table: one wide Parquet table partitioned by event date (``date=YYYY-MM-DD``)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from playnext.lake.table import DataFile, LakeTable

EVENTS_TABLE = "events"


def events_table(lake_dir: Path) -> LakeTable:
    return LakeTable(lake_dir / EVENTS_TABLE)


def write_event_partitions(table: LakeTable, batch: pa.Table, tag: str) -> list[DataFile]:
    """Write ``batch`` aside as one file per event date, sorted by time; commit the result to publish it."""
    if batch.num_rows == 0:
        return []
    dates = pc.cast(batch["ts"], pa.date32())
    added = []
    for day in sorted(pc.unique(dates).to_pylist()):
        part = batch.filter(pc.equal(dates, pa.scalar(day, pa.date32()))).sort_by([("ts", "ascending")])
        added.append(table.write_file(part, partition=f"date={day.isoformat()}", tag=tag))
    return added
