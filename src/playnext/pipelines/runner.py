"""``playnext pipeline run``: build the chosen feature tables on one engine and commit each atomically.

Each table is a lake table under ``features/<name>/`` whose manifest records what it was made from (the events
table's version and row count, the reference time), how (engine, parameters, schema version) and how long it
took. A failure leaves the table as it was before the run; tables already committed by the run stay committed,
each whole.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from playnext.config import Settings
from playnext.lake.table import LakeTable
from playnext.pipelines.engine import build_engine
from playnext.pipelines.inputs import load_inputs
from playnext.pipelines.tables import TABLES


class UnknownTable(ValueError):
    pass


@dataclass
class TableRun:
    name: str
    rows: int
    files: int
    seconds: float


def feature_table(settings: Settings, name: str) -> LakeTable:
    return LakeTable(settings.features_dir / name)


def choose(tables: Sequence[str] | None) -> list[str]:
    if not tables:
        return list(TABLES)
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise UnknownTable(f"unknown table(s) {', '.join(unknown)}; choose from {', '.join(TABLES)}")
    return list(dict.fromkeys(tables))


def run_pipeline(
    settings: Settings,
    *,
    engine: str | None = None,
    spark_master: str | None = None,
    tables: Sequence[str] | None = None,
    as_of: dt.datetime | None = None,
    on_table: Callable[[str, TableRun | None], None] | None = None,
) -> list[TableRun]:
    """Build ``tables`` (all by default); ``on_table(name, None)`` before each, ``on_table(name, run)`` after."""
    names = choose(tables)
    params = settings.pipelines
    engine_name = engine or params.engine
    runs: list[TableRun] = []
    with build_engine(engine_name, spark_master=spark_master or params.spark_master) as eng:
        inputs = load_inputs(eng, settings, as_of)
        for name in names:
            if on_table:
                on_table(name, None)
            spec = TABLES[name]
            t0 = time.perf_counter()
            target = feature_table(settings, name)
            old = target.manifest()
            files = eng.materialize(spec.build(inputs, params), target)
            seconds = time.perf_counter() - t0
            rows = sum(f.rows for f in files)
            target.commit(
                add=files,
                remove=[f.path for f in old.files],
                meta={
                    "table": name,
                    "schema_version": spec.version,
                    "engine": eng.name,
                    "as_of": inputs.as_of.isoformat(),
                    "inputs": {"events": {"version": inputs.events_version, "rows": inputs.events_rows}},
                    "params": params.model_dump(exclude={"engine", "spark_master"}),
                    "rows": rows,
                    "seconds": round(seconds, 3),
                },
                expect_version=old.version,
            )
            result = TableRun(name=name, rows=rows, files=len(files), seconds=seconds)
            runs.append(result)
            if on_table:
                on_table(name, result)
    return runs
