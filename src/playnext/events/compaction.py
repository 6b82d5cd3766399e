"""Sealed log segments into the lake's ``events`` table, partitioned by event date.

Crash-safe and idempotent by construction: new Parquet files are written aside, then one manifest rename adds
them *and* advances ``compacted_through`` (the last segment folded in). Only after that are the segments deleted.
So a crash before the rename leaves the old table and the segments (the next run redoes the work and sweeps the
orphan files); a crash after it leaves segments that the next run sees as done and deletes. No event is lost or
doubled at any point.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from playnext.durable import file_lock
from playnext.events import framing
from playnext.events.exposures import BadExposure, parse_lines
from playnext.events.lake_events import events_table, write_event_partitions
from playnext.events.log import EventLog, LogLocked, sealed_segments, sidecar_path
from playnext.events.schema import ARROW_SCHEMA
from playnext.privacy.tombstones import Tombstones, digest

log = logging.getLogger(__name__)

# Payload bytes folded into one commit: bounds memory, and makes progress visible on a large backlog.
DEFAULT_COMMIT_BYTES = 256 * 1024 * 1024


class CorruptSegment(RuntimeError):
    """A sealed segment fails its checksums: disk corruption, not a crash (crashes only tear the active one)."""


@dataclass
class CompactionResult:
    segments: list[int] = field(default_factory=list)
    events: int = 0
    files: int = 0
    partitions: set[str] = field(default_factory=set)
    deleted_segments: int = 0
    swept_orphans: int = 0


def segment_events(path: Path) -> pa.Table:
    """All events of one sealed segment as an Arrow table in the lake schema, exposures unfolded into their
    impressions (``exposures``)."""
    scan = framing.scan(path)
    if scan.torn:
        raise CorruptSegment(
            f"{path} is corrupt at byte {scan.valid_end} of {scan.size}; move it aside to compact the rest"
        )
    try:
        return parse_lines(b"".join(f.payload for f in scan.frames))
    except BadExposure as exc:
        raise CorruptSegment(f"{path}: {exc}; move it aside to compact the rest") from None


def _seal_if_idle(log_dir: Path, segment_max_bytes: int) -> None:
    """When no writer runs, open the log once: cuts a torn tail, brings dedup up to date, seals the last one."""
    try:
        with EventLog(log_dir, segment_max_bytes=segment_max_bytes) as event_log:
            event_log.rotate()
    except LogLocked:
        pass  # a live writer recovered the log when it started; its sealed segments are ours to compact


def _unique_events(table: pa.Table) -> pa.Table:
    if pc.count_distinct(table["event_id"]).as_py() == table.num_rows:
        return table
    # Only reachable if the dedup index was lost; keep the first occurrence of each id.
    log.warning("duplicate event ids in the log; keeping the first of each")
    con = duckdb.connect()
    con.register("batch", table)
    return (
        con.sql(
            "SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER (PARTITION BY event_id) AS rn FROM batch) "
            "WHERE rn = 1"
        )
        .to_arrow_table()
        .cast(ARROW_SCHEMA)
    )


def _without_forgotten(table: pa.Table, tombstones: Tombstones | None) -> pa.Table:
    """Drop events of listeners whose data was deleted on request, up to the time of that request."""
    forgotten = tombstones.forgotten_at() if tombstones is not None else {}
    if not forgotten or not table.num_rows:
        return table
    keep = pa.array(np.ones(table.num_rows, dtype=bool))
    for user in pc.unique(table["user_id"]).to_pylist():
        when = forgotten.get(digest(user))
        if when is None:
            continue
        cutoff = pa.scalar(dt.datetime.fromtimestamp(when, dt.UTC), table.schema.field("ts").type)
        buried = pc.and_(pc.equal(table["user_id"], user), pc.less_equal(table["ts"], cutoff))
        keep = pc.and_(keep, pc.invert(buried))
    return table.filter(keep)


def _delete_segment(log_dir: Path, seq: int, path: Path) -> int:
    """Delete a compacted segment's events, but only once its ids are in a dedup sidecar: they are the only
    record that those event ids were ever stored. Without one (a writer died sealing it) it stays until the next
    writer has read it back."""
    if not sidecar_path(log_dir, seq).exists():
        return 0
    path.unlink(missing_ok=True)
    return 1


def compact(
    log_dir: Path,
    lake_dir: Path,
    *,
    segment_max_bytes: int = 64 * 1024 * 1024,
    commit_bytes: int = DEFAULT_COMMIT_BYTES,
    on_progress: Callable[[int, int], None] | None = None,
    tombstones: Tombstones | None = None,
) -> CompactionResult:
    """Fold sealed segments into the lake; ``tombstones`` name listeners whose past events never reach it again.
    One compaction at a time per lake (the server's own, ``playnext events compact``, a forget request)."""
    lake_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(lake_dir / "_compaction.lock"):
        return _compact(log_dir, lake_dir, segment_max_bytes, commit_bytes, on_progress, tombstones)


def _compact(
    log_dir: Path,
    lake_dir: Path,
    segment_max_bytes: int,
    commit_bytes: int,
    on_progress: Callable[[int, int], None] | None,
    tombstones: Tombstones | None,
) -> CompactionResult:
    result = CompactionResult()
    if not log_dir.exists():
        return result
    _seal_if_idle(log_dir, segment_max_bytes)
    table = events_table(lake_dir)
    result.swept_orphans = len(table.sweep_orphans())
    done = int(table.manifest().meta.get("compacted_through", 0))
    segments = sealed_segments(log_dir)
    for seq, path in segments:
        if seq <= done:  # folded in by a run that crashed before deleting them
            result.deleted_segments += _delete_segment(log_dir, seq, path)
    todo = [(s, p) for s, p in segments if s > done]
    total = sum(p.stat().st_size for _, p in todo)
    progressed = 0
    while todo:
        chunk, size = [], 0
        while todo and (not chunk or size + todo[0][1].stat().st_size <= commit_bytes):
            seq, path = todo.pop(0)
            chunk.append((seq, path))
            size += path.stat().st_size
        batch = _without_forgotten(_unique_events(pa.concat_tables(segment_events(p) for _, p in chunk)), tombstones)
        added = write_event_partitions(table, batch, tag=f"seg{chunk[0][0]:012d}-{chunk[-1][0]:012d}")
        last = chunk[-1][0]
        table.commit(add=added, meta={"compacted_through": last})
        for seq, path in chunk:
            result.deleted_segments += _delete_segment(log_dir, seq, path)
        result.segments += [s for s, _ in chunk]
        result.events += batch.num_rows
        result.files += len(added)
        result.partitions.update(f.partition for f in added if f.partition)
        progressed += size
        if on_progress:
            on_progress(progressed, total)
    return result
