"""The same lake through DuckDB and Spark gives the same tables: one definition, two engines.

Spark really runs here (``local[2]``); it needs a JVM, which ``scripts/setup.sh`` installs when missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from playnext.config import PipelineSettings, Settings
from playnext.pipelines.runner import run_pipeline
from playnext.pipelines.tables import TABLES
from tests.pipelines.compare import assert_same_table
from tests.pipelines.lake import tiny_world
from tests.pipelines.world import add_events, copy_world, two_part_world

pytest.importorskip("pyspark", reason="the spark extra is part of the test install (scripts/setup.sh)")
pytestmark = pytest.mark.slow


def test_duckdb_and_spark_agree_on_every_table(tmp_path: Path) -> None:
    duck, rest = two_part_world(tmp_path / "duck")
    spark = copy_world(duck, tmp_path / "spark")
    run_pipeline(duck)
    run_pipeline(spark, engine="spark", spark_master="local[2]")
    for name in TABLES:
        assert_same_table(duck, spark, name, rel=1e-9)
    # Incremental runs agree too, and Spark's own tables feed its next incremental run.
    add_events(duck, rest)
    add_events(spark, rest)
    run_pipeline(duck)
    modes = {r.name: r.mode for r in run_pipeline(spark, engine="spark", spark_master="local[2]")}
    assert modes["sessions"] == "incremental"
    for name in TABLES:
        assert_same_table(duck, spark, name, rel=1e-9)


def test_the_hand_computed_world_is_the_same_on_spark(tmp_path: Path) -> None:
    params = PipelineSettings(cooccurrence_min_count=1)
    duck = Settings(data_dir=tmp_path / "duck", pipelines=params)
    spark = Settings(data_dir=tmp_path / "spark", pipelines=params)
    tiny_world(duck)
    tiny_world(spark)
    run_pipeline(duck)
    run_pipeline(spark, engine="spark", spark_master="local[2]")
    for name in TABLES:
        assert_same_table(duck, spark, name)
