"""An incremental run over new events (a new day, and late events for old days) equals a full rebuild."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from playnext.config import PipelineSettings
from playnext.pipelines.runner import feature_table, run_pipeline
from playnext.pipelines.tables import TABLES
from tests.pipelines.compare import assert_same_table
from tests.pipelines.world import add_events, copy_world, two_part_world

INCREMENTAL = [name for name, spec in TABLES.items() if spec.incremental is not None]


def test_incremental_equals_full_after_a_new_day_and_late_events(tmp_path: Path) -> None:
    settings, rest = two_part_world(tmp_path / "inc")
    first = {r.name: r.mode for r in run_pipeline(settings)}
    assert set(first.values()) == {"full"}
    assert feature_table(settings, "outcomes").manifest().rows > 0

    add_events(settings, rest)
    second = {r.name: r.mode for r in run_pipeline(settings)}
    assert {second[n] for n in INCREMENTAL} == {"incremental"}
    assert all(second[n] == "full" for n in TABLES if n not in INCREMENTAL)

    rebuilt = copy_world(settings, tmp_path / "full")
    run_pipeline(rebuilt, full=True)
    for name in TABLES:
        assert_same_table(settings, rebuilt, name)


def test_nothing_new_leaves_incremental_tables_unchanged(tmp_path: Path) -> None:
    settings, _ = two_part_world(tmp_path)
    run_pipeline(settings, tables=INCREMENTAL)
    version = feature_table(settings, "sessions").manifest().version
    again = {r.name: r.mode for r in run_pipeline(settings, tables=INCREMENTAL)}
    assert set(again.values()) == {"unchanged"}
    assert feature_table(settings, "sessions").manifest().version == version


def test_changed_parameters_force_a_full_rebuild(tmp_path: Path) -> None:
    settings, rest = two_part_world(tmp_path)
    run_pipeline(settings, tables=["sessions"])
    add_events(settings, rest)
    changed = settings.model_copy(update={"pipelines": PipelineSettings(session_gap_minutes=10)})
    assert [r.mode for r in run_pipeline(changed, tables=["sessions"])] == ["full"]


@pytest.mark.parametrize("name", INCREMENTAL)
def test_removed_input_files_force_a_full_rebuild(tmp_path: Path, name: str) -> None:
    from playnext.events.lake_events import events_table

    settings, _ = two_part_world(tmp_path)
    run_pipeline(settings, tables=[name])
    lake = events_table(settings.lake_dir)
    lake.commit(remove=[lake.manifest().files[0].path])  # e.g. a user's data deleted on request
    assert [r.mode for r in run_pipeline(settings, tables=[name])] == ["full"]


def test_a_changed_catalog_forces_a_full_rebuild(tmp_path: Path) -> None:
    """Durations and genres come from the catalog: an incremental update would mix two versions of them."""
    from playnext.catalog.store import catalog_table

    settings, rest = two_part_world(tmp_path)
    run_pipeline(settings, tables=INCREMENTAL)
    tracks = catalog_table(settings.catalog_dir, "tracks")
    old = tracks.manifest()
    table = tracks.read()
    index = table.schema.get_field_index("duration_ms")
    fixed = table.set_column(index, "duration_ms", pa.array([200_000] * table.num_rows, pa.int64()))
    tracks.commit(add=[tracks.write_file(fixed)], remove=[f.path for f in old.files])
    add_events(settings, rest)
    assert {r.mode for r in run_pipeline(settings, tables=INCREMENTAL)} == {"full"}
