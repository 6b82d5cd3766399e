from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from playnext.events.importer import import_events
from playnext.events.log import EventLog
from playnext.events.validation import Clock
from playnext.records import MAX_RECORD_BYTES, UnreadableFile
from tests.conftest import event
from tests.events.helpers import ids_in_log

CLOCK = Clock(dt.timedelta(hours=24))


def run(path: Path, log_dir: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    with EventLog(log_dir) as log:
        return import_events(path, log.append, CLOCK, **kwargs)


def test_ndjson_import_reports_bad_lines_by_number_and_keeps_the_rest(tmp_path: Path) -> None:
    good = [event(), event("save"), event("search")]
    lines = [
        msgspec.json.encode(good[0]),
        b"{broken",
        b"",
        msgspec.json.encode(good[1]),
        msgspec.json.encode(event(ms_played=-1)),
        b"\xff\xfe\x00",
        msgspec.json.encode(good[2]),
    ]
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = run(path, tmp_path / "log")
    assert report.accepted == 3 and report.rejected.count == 3
    assert [line for line, _ in report.rejected.shown] == [2, 5, 6]
    assert sorted(ids_in_log(tmp_path / "log")) == sorted(e["event_id"] for e in good)


def test_reimporting_a_file_stores_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(msgspec.json.encode(event()) for _ in range(10)))
    assert run(path, tmp_path / "log").accepted == 10
    again = run(path, tmp_path / "log")
    assert again.accepted == 0 and again.duplicates == 10
    assert len(ids_in_log(tmp_path / "log")) == 10


def test_csv_import_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    fields = ["type", "event_id", "user_id", "ts", "item_id", "item_type", "ms_played"]
    rows = [
        ["play", "c1", "u1", "2026-11-20T10:00:00Z", "t1", "track", "1000"],
        ["play", "c2", "u1", "2026-11-20T10:00:00Z", "t1", "track", "lots"],
        ["skip", "c3", "u2", "2026-11-20T10:00:00Z", "t2", "track", ""],
        ["play", "c4", "u1", "2026-11-20T10:00:00Z", "t1", "track", "1", "extra"],
    ]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(fields)
        writer.writerows(rows)
    report = run(path, tmp_path / "log")
    assert report.accepted == 2
    assert [line for line, _ in report.rejected.shown] == [3, 5]
    assert sorted(ids_in_log(tmp_path / "log")) == ["c1", "c3"]


def test_csv_with_invalid_utf8_and_a_huge_field_rejects_those_rows_only(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    header = b"type,event_id,user_id,ts,item_id,item_type\n"
    ok = b"save,k1,u1,2026-11-20T10:00:00Z,t1,track\n"
    bad_bytes = b"save,k2,u\xff1,2026-11-20T10:00:00Z,t1,track\n"
    huge = b"save,k3," + b"u" * (MAX_RECORD_BYTES + 10) + b",2026-11-20T10:00:00Z,t1,track\n"
    path.write_bytes(header + ok + bad_bytes + huge + ok.replace(b"k1", b"k4"))
    report = run(path, tmp_path / "log")
    assert report.accepted == 2 and report.rejected.count == 2
    assert sorted(ids_in_log(tmp_path / "log")) == ["k1", "k4"]


def test_parquet_import_numbers_rows(tmp_path: Path) -> None:
    records = [event(), event(), event(ms_played=-3)]
    table = pa.Table.from_pylist(records)
    pq.write_table(table, tmp_path / "ev.parquet")
    report = run(tmp_path / "ev.parquet", tmp_path / "log")
    assert report.accepted == 2 and [line for line, _ in report.rejected.shown] == [3]


def test_an_oversized_ndjson_line_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson"
    path.write_bytes(b'{"x": "' + b"a" * (MAX_RECORD_BYTES + 1) + b'"}\n' + msgspec.json.encode(event()) + b"\n")
    report = run(path, tmp_path / "log")
    assert report.accepted == 1 and report.rejected.shown[0][0] == 1 and "limit" in report.rejected.shown[0][1]


@pytest.mark.parametrize("name", ["missing.ndjson", "events.xlsx"])
def test_unreadable_files_are_named(tmp_path: Path, name: str) -> None:
    if name.endswith("xlsx"):
        (tmp_path / name).write_bytes(b"PK")
    with pytest.raises(UnreadableFile, match=re.escape(name)):
        run(tmp_path / name, tmp_path / "log")


def test_a_file_that_is_not_parquet_is_named(tmp_path: Path) -> None:
    (tmp_path / "fake.parquet").write_bytes(b"hello")
    with pytest.raises(UnreadableFile, match=r"fake\.parquet"):
        run(tmp_path / "fake.parquet", tmp_path / "log")
