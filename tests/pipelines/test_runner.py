"""Bad input: clear errors, and no table left half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playnext.config import Settings
from playnext.lake.table import LakeTable
from playnext.pipelines.engine import UnknownEngine
from playnext.pipelines.inputs import EmptyLake
from playnext.pipelines.runner import UnknownTable, feature_table, run_pipeline
from tests.e2e import env_for, playnext
from tests.pipelines.lake import tiny_world


def test_an_empty_lake_is_a_clear_error_and_writes_nothing(settings: Settings) -> None:
    with pytest.raises(EmptyLake, match="no events"):
        run_pipeline(settings)
    assert not settings.features_dir.exists()


def test_unknown_tables_and_engines_are_refused_before_any_work(settings: Settings) -> None:
    tiny_world(settings)
    with pytest.raises(UnknownTable, match="nope"):
        run_pipeline(settings, tables=["sessions", "nope"])
    with pytest.raises(UnknownEngine, match="flink"):
        run_pipeline(settings, engine="flink")
    assert not settings.features_dir.exists()


def test_a_failing_table_keeps_its_previous_version(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny_world(settings)
    run_pipeline(settings, tables=["item_stats"])
    before = feature_table(settings, "item_stats").read()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(LakeTable, "commit", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        run_pipeline(settings, tables=["item_stats"], full=True)
    monkeypatch.undo()
    assert feature_table(settings, "item_stats").read().equals(before)


def test_a_missing_partition_file_is_a_clear_error(settings: Settings) -> None:
    from playnext.events.lake_events import events_table

    tiny_world(settings)
    events_table(settings.lake_dir).file_paths()[0].unlink()
    with pytest.raises(Exception, match=r"\.parquet"):
        run_pipeline(settings, tables=["sessions"])
    assert not feature_table(settings, "sessions").manifest().files


def test_an_unknown_column_in_the_lake_is_ignored_and_a_missing_one_is_an_error(settings: Settings) -> None:
    import pyarrow as pa

    from playnext.events.lake_events import events_table

    tiny_world(settings)
    lake = events_table(settings.lake_dir)
    extra = lake.read().append_column("surprise", pa.array(["x"] * 10))
    current = lake.manifest()
    lake.commit(add=[lake.write_file(extra, partition="date=2026-11-01")], remove=[f.path for f in current.files])
    assert {r.name for r in run_pipeline(settings, tables=["sessions"])} == {"sessions"}
    broken = lake.read().drop_columns(["ms_played"])
    current = lake.manifest()
    lake.commit(add=[lake.write_file(broken, partition="date=2026-11-01")], remove=[f.path for f in current.files])
    with pytest.raises(Exception, match="ms_played"):
        run_pipeline(settings, tables=["item_stats"], full=True)


def test_the_cli_runs_pipelines_and_sql_sees_the_tables(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data")
    playnext("simulate", "--users", "30", "--tracks", "200", "--days", "3", "--start", "2026-11-01", env=env)
    out = playnext("pipeline", "run", "--tables", "sessions,item_stats", env=env)
    assert "sessions" in out.stdout and "full" in out.stdout
    again = playnext("pipeline", "run", "--tables", "sessions", env=env)
    assert "unchanged" in again.stdout
    rows = json.loads(playnext("sql", "SELECT count(*) AS n FROM sessions", "--format", "json", env=env).stdout)
    assert rows[0]["n"] > 0
    bad = playnext("pipeline", "run", "--engine", "flink", env=env, check=False)
    assert bad.returncode == 2 and "unknown engine" in bad.stderr
    empty = playnext("pipeline", "run", env=env_for(tmp_path / "empty"), check=False)
    assert empty.returncode == 2 and "no events" in empty.stderr


def test_features_do_not_depend_on_the_machines_time_zone(tmp_path: Path) -> None:
    """DuckDB takes the machine's zone by default, and epochs and hours of timestamps with a zone go through
    it; the engine pins UTC, so a server in India computes what one in Iceland does."""
    from tests.pipelines.compare import assert_same_table

    utc = Settings(data_dir=tmp_path / "utc" / "data")
    tiny_world(utc)
    for name, tz in (("utc", "UTC"), ("kolkata", "Asia/Kolkata")):
        env = env_for(tmp_path / name / "data") | {"TZ": tz}
        if name != "utc":
            tiny_world(Settings(data_dir=tmp_path / name / "data"))
        playnext("pipeline", "run", "--tables", "user_profile,user_item_affinity", env=env)
    other = Settings(data_dir=tmp_path / "kolkata" / "data")
    for table in ("user_profile", "user_item_affinity"):
        assert_same_table(utc, other, table)
    hours = {r["key"] for r in feature_table(other, "user_profile").read().to_pylist() if r["facet"] == "hour"}
    assert hours == {"10", "12", "20"}
