from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from playnext.events import compaction
from playnext.events.compaction import CorruptSegment, compact
from playnext.events.exposures import Exposure
from playnext.events.lake_events import events_table
from playnext.events.log import EventLog, list_segments
from playnext.lake.table import LakeTable
from tests.events.helpers import events


def lake_ids(lake: Path) -> list[str]:
    paths = [str(p) for p in events_table(lake).file_paths()]
    if not paths:
        return []
    return [r[0] for r in duckdb.sql(f"SELECT event_id FROM read_parquet({paths})").fetchall()]


@pytest.fixture
def filled_log(tmp_path: Path) -> Path:
    log_dir = tmp_path / "log"
    with EventLog(log_dir, segment_max_bytes=4096) as log:
        for day in (18, 19, 20):
            log.append(events(40, prefix=f"d{day}-", ts=f"2026-11-{day}T23:59:59.999+00:00"))
    return log_dir


def test_compaction_moves_every_event_into_date_partitions(filled_log: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    result = compact(filled_log, lake)
    assert result.events == 120
    assert result.partitions == {"date=2026-11-18", "date=2026-11-19", "date=2026-11-20"}
    assert sorted(lake_ids(lake)) == sorted(f"d{d}-{i}" for d in (18, 19, 20) for i in range(40))
    assert all(path.stat().st_size == 0 for _, path in list_segments(filled_log))


def test_compaction_is_idempotent(filled_log: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    compact(filled_log, lake)
    again = compact(filled_log, lake)
    assert again.events == 0
    assert len(lake_ids(lake)) == 120


def test_a_crash_before_the_manifest_commit_leaves_the_old_table(
    filled_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed before commit")

    monkeypatch.setattr(LakeTable, "commit", crash)
    with pytest.raises(KeyboardInterrupt):
        compact(filled_log, lake)
    monkeypatch.undo()
    assert lake_ids(lake) == []  # files were written aside but are not part of the table
    assert (
        compact(
            filled_log,
            lake,
        ).events
        == 120
    )
    assert sorted(lake_ids(lake)) == sorted(set(lake_ids(lake)))
    assert len(lake_ids(lake)) == 120
    swept = events_table(lake).sweep_orphans(min_age_s=0)
    assert swept, "the crashed run's files are orphans and get swept"
    assert len(lake_ids(lake)) == 120


def test_a_crash_after_the_commit_but_before_deleting_segments_doubles_nothing(
    filled_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    real_unlink = Path.unlink

    def crash_on_segment_delete(self: Path, missing_ok: bool = False) -> None:
        if self.name.startswith("segment-"):
            raise KeyboardInterrupt("killed after commit")
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", crash_on_segment_delete)
    with pytest.raises(KeyboardInterrupt):
        compact(filled_log, lake, commit_bytes=1)
    monkeypatch.undo()
    assert 0 < len(lake_ids(lake)) < 120
    result = compact(filled_log, lake)
    assert result.deleted_segments >= 1
    ids = lake_ids(lake)
    assert len(ids) == len(set(ids)) == 120


def test_a_corrupt_sealed_segment_stops_compaction_with_its_name(filled_log: Path, tmp_path: Path) -> None:
    _, path = next(s for s in list_segments(filled_log) if s[1].stat().st_size)
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF
    path.write_bytes(bytes(data))
    with EventLog(filled_log) as log:  # a running writer: compaction must not touch the log's recovery
        with pytest.raises(CorruptSegment, match=path.name):
            compact(filled_log, tmp_path / "lake")
        assert log.healthy
    assert lake_ids(tmp_path / "lake") == []


def test_compaction_alongside_a_running_writer_takes_only_sealed_segments(tmp_path: Path) -> None:
    log_dir, lake = tmp_path / "log", tmp_path / "lake"
    with EventLog(log_dir, segment_max_bytes=4096) as log:
        for i in range(10):
            log.append(events(10, prefix=f"b{i}-"))
        result = compact(log_dir, lake)
        assert 0 < result.events < 100
        log.append(events(10, prefix="after-"))
    compact(log_dir, lake)
    ids = lake_ids(lake)
    assert len(ids) == len(set(ids)) == 110


def test_an_empty_or_missing_log_compacts_to_nothing(tmp_path: Path) -> None:
    assert compact(tmp_path / "nothing", tmp_path / "lake").events == 0
    assert compaction.events_table(tmp_path / "lake").manifest().files == []


def test_a_segment_without_a_dedup_sidecar_is_compacted_but_kept(filled_log: Path, tmp_path: Path) -> None:
    sealed = [(seq, p) for seq, p in list_segments(filled_log) if p.stat().st_size]
    seq, path = sealed[0]
    with EventLog(filled_log):  # a live writer, so compaction does not rebuild sidecars itself
        (filled_log / f"segment-{seq:012d}.ids").unlink()  # as if the writer had died sealing it
        result = compact(filled_log, tmp_path / "lake")
        assert path.exists()
    assert result.events == 120
    again = compact(filled_log, tmp_path / "lake")  # now idle: the writer's open gave the segment its sidecar back
    assert not path.exists() and again.events == 0
    assert len(lake_ids(tmp_path / "lake")) == 120


def test_exposures_compact_into_their_impressions_beside_client_events(tmp_path: Path) -> None:
    log_dir, lake = tmp_path / "log", tmp_path / "lake"
    at = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    shown = Exposure("req-1", "discover-weekly", "exp:a", 1.0, "x1-0", "u1", at, ["t1", "t2"], ["track", "track"])
    with EventLog(log_dir) as log:
        log.submit_fresh([shown]).result(timeout=10)
        log.append(events(3, prefix="c-", ts="2026-11-20T12:00:00+00:00"))
    result = compact(log_dir, lake)
    assert result.events == 5
    assert sorted(lake_ids(lake)) == ["c-0", "c-1", "c-2", "x1-0-0", "x1-0-1"]


def test_an_exposure_that_does_not_add_up_stops_compaction_and_loses_nothing(tmp_path: Path) -> None:
    log_dir, lake = tmp_path / "log", tmp_path / "lake"
    at = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    bad = Exposure("req-1", "discover-weekly", None, 1.0, "x1-0", "u1", at, ["t1", "t2"], ["track"])
    with EventLog(log_dir) as log:
        log.append(events(3, prefix="c-", ts="2026-11-20T12:00:00+00:00"))
        log.submit_fresh([bad]).result(timeout=10)
    segment = next(p for _, p in list_segments(log_dir) if p.stat().st_size)
    with pytest.raises(CorruptSegment, match=f"{segment.name}.*differ in length"):
        compact(log_dir, lake)
    assert lake_ids(lake) == [] and segment.stat().st_size > 0  # the segment stays for someone to look at
