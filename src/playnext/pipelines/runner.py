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
from playnext.lake.table import LakeTable, Manifest
from playnext.pipelines.engine import build_engine
from playnext.pipelines.inputs import Delta, Inputs, load_delta, load_inputs
from playnext.pipelines.tables import TABLES, FeatureTable


class UnknownTable(ValueError):
    pass


@dataclass
class TableRun:
    name: str
    mode: str  # "full", "incremental" or "unchanged"
    rows: int
    files: int
    seconds: float


def _plan(spec: FeatureTable, old: Manifest, inputs: Inputs, params: dict, full: bool) -> tuple[str, list[str]]:
    """How to bring a table up to date: ("unchanged" | "incremental" | "full", new event files)."""
    meta = old.meta
    consumed = set(meta.get("inputs", {}).get("events", {}).get("files", []))
    current = set(inputs.events_files)
    previous_as_of = meta.get("as_of")
    reusable = (
        spec.incremental is not None
        and not full
        and bool(old.files)
        and meta.get("schema_version") == spec.version
        and meta.get("params") == params
        and previous_as_of is not None
        and consumed <= current  # nothing was removed or rewritten under it
        and meta.get("inputs", {}).get("catalog") == inputs.catalog_versions
        and dt.datetime.fromisoformat(previous_as_of) <= inputs.as_of
    )
    if not reusable:
        return "full", []
    new = sorted(current - consumed)
    if not new and dt.datetime.fromisoformat(previous_as_of) == inputs.as_of:
        return "unchanged", []
    return "incremental", new


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
    full: bool = False,
    as_of: dt.datetime | None = None,
    on_table: Callable[[str, TableRun | None], None] | None = None,
) -> list[TableRun]:
    """Build ``tables`` (all by default); ``on_table(name, None)`` before each, ``on_table(name, run)`` after.

    A table is updated incrementally when it can be and nothing forbids it: same schema version and parameters,
    no event file it consumed has gone, the catalog it read is unchanged, and the reference time has not moved
    back. ``full`` rebuilds all."""
    names = choose(tables)
    params = settings.pipelines
    recorded = params.model_dump(exclude={"engine", "spark_master"})
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
            mode, new_files = _plan(spec, old, inputs, recorded, full or as_of is not None)
            if mode == "unchanged":
                result = TableRun(name, mode, old.rows, len(old.files), time.perf_counter() - t0)
                runs.append(result)
                if on_table:
                    on_table(name, result)
                continue
            if mode == "full":
                expr = spec.build(inputs, params)
            else:
                assert spec.incremental is not None
                previous_as_of = dt.datetime.fromisoformat(old.meta["as_of"])
                delta = load_delta(eng, settings, new_files, previous_as_of)
                if delta is None:  # new files, but empty: only the reference time moved
                    delta = Delta(new_events=inputs.events.limit(0), since=inputs.as_of, previous_as_of=previous_as_of)
                previous = eng.source(f"previous_{name}", target.file_paths(), None)
                expr = spec.incremental(inputs, previous, delta, params)
            files = eng.materialize(expr, target)
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
                    "inputs": {
                        "events": {
                            "version": inputs.events_version,
                            "rows": inputs.events_rows,
                            "files": inputs.events_files,
                        },
                        "catalog": inputs.catalog_versions,
                    },
                    "params": recorded,
                    "mode": mode,
                    "rows": rows,
                    "seconds": round(seconds, 3),
                },
                expect_version=old.version,
            )
            result = TableRun(name=name, mode=mode, rows=rows, files=len(files), seconds=seconds)
            runs.append(result)
            if on_table:
                on_table(name, result)
    return runs
