from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pytest

from playnext.lake.table import LakeTable


def rows(n: int) -> pa.Table:
    return pa.table({"x": list(range(n))})


def test_written_files_are_invisible_until_committed(tmp_path: Path) -> None:
    table = LakeTable(tmp_path / "t")
    entry = table.write_file(rows(3), partition="date=2026-11-20")
    assert table.read() is None
    manifest = table.commit(add=[entry], meta={"k": 1})
    assert manifest.version == 1 and manifest.rows == 3 and manifest.meta == {"k": 1}
    assert table.read().num_rows == 3


def test_commit_replaces_files_atomically_and_deletes_the_old_ones(tmp_path: Path) -> None:
    table = LakeTable(tmp_path / "t")
    old = table.write_file(rows(2))
    table.commit(add=[old])
    new = table.write_file(rows(5))
    table.commit(add=[new], remove=[old.path])
    assert table.read().num_rows == 5
    assert not (table.directory / old.path).exists()


def test_a_stale_writer_is_refused(tmp_path: Path) -> None:
    table = LakeTable(tmp_path / "t")
    seen = table.manifest().version
    table.commit(add=[table.write_file(rows(1))])
    with pytest.raises(RuntimeError, match="changed under this writer"):
        table.commit(add=[table.write_file(rows(1))], expect_version=seen)


def test_orphans_are_swept_only_when_old(tmp_path: Path) -> None:
    table = LakeTable(tmp_path / "t")
    table.commit(add=[table.write_file(rows(1))])
    orphan = table.write_file(rows(1))
    assert table.sweep_orphans() == []  # young: maybe a live writer's
    old = time.time() - 7200
    os.utime(table.directory / orphan.path, (old, old))
    assert table.sweep_orphans() == [table.directory / orphan.path]
    assert table.read().num_rows == 1


def test_an_unreadable_manifest_is_a_clear_error(tmp_path: Path) -> None:
    table = LakeTable(tmp_path / "t")
    table.commit(add=[table.write_file(rows(1))])
    (table.directory / "_manifest.json").write_text("{half")
    with pytest.raises(RuntimeError, match="unreadable"):
        table.manifest()
