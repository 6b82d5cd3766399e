"""SQL over the lake and the catalog with DuckDB: what ``playnext sql`` and later stages query.

Views are built from manifests, never from directory listings, so a query sees exactly the committed tables. A
table that does not exist yet is an empty view with its real columns: ``SELECT count(*) FROM events`` on a fresh
install answers 0 instead of failing.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from playnext.catalog.schema import KINDS, arrow_schema
from playnext.config import Settings
from playnext.events.lake_events import events_table
from playnext.events.schema import ARROW_SCHEMA
from playnext.lake.table import LakeTable


def _quote(path: Path) -> str:
    return "'" + str(path.resolve()).replace("'", "''") + "'"


def _view(con: duckdb.DuckDBPyConnection, name: str, table: LakeTable, empty_schema, hive: bool) -> None:  # type: ignore[no-untyped-def]
    paths = table.file_paths()
    if paths:
        files = "[" + ", ".join(_quote(p) for p in paths) + "]"
        options = ", hive_partitioning = true, hive_types = {'date': DATE}" if hive else ""
        con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM read_parquet({files}{options})')
    else:
        empty = empty_schema.empty_table()
        con.register(f"__empty_{name}", empty)
        extra = ", NULL::DATE AS date" if hive else ""
        con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT *{extra} FROM "__empty_{name}"')


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per lake table: ``events`` and each catalog kind."""
    con = duckdb.connect()
    _view(con, "events", events_table(settings.lake_dir), ARROW_SCHEMA, hive=True)
    for kind in KINDS:
        _view(con, kind, LakeTable(settings.catalog_dir / kind), arrow_schema(kind), hive=False)
    # Feature tables (stage ②) appear once a pipeline run has written them.
    if settings.features_dir.is_dir():
        for directory in sorted(settings.features_dir.iterdir()):
            table = LakeTable(directory)
            if directory.is_dir() and table.file_paths():
                _view(con, directory.name, table, None, hive=False)
    return con


VIEWS = ("events", *KINDS)
