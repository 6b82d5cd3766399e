"""Where pipeline expressions run. The choice between DuckDB and Spark is made here, once; transforms never ask.

An engine registers lake tables (exactly the files their manifests name) as Ibis tables, and materializes an
expression into a lake table with its own writer: DuckDB's COPY, or Spark's distributed Parquet writer, so a
cluster never funnels a feature table through the driver. Both write aside and hand back files for one manifest
commit, like every other writer of the lake.
"""

from __future__ import annotations

import os
import shutil
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa
import pyarrow.parquet as pq

from playnext.durable import fsync_dir
from playnext.lake.table import DataFile, LakeTable

ENGINES = ("duckdb", "spark")


@ibis.udf.scalar.builtin(name="epoch")
def _duckdb_epoch(ts: dt.Timestamp(timezone="UTC")) -> dt.float64:  # type: ignore[empty-body,valid-type]
    """DuckDB's ``epoch``: seconds since 1970 (with the fraction), straight from a TIMESTAMPTZ."""


@ibis.udf.scalar.builtin(name="unix_timestamp")
def _spark_epoch(ts: dt.Timestamp(timezone="UTC")) -> dt.int64:  # type: ignore[empty-body,valid-type]
    """Spark's ``unix_timestamp``: whole seconds since 1970."""


class UnknownEngine(ValueError):
    pass


class Engine(ABC):
    name: str
    backend: Any

    @abstractmethod
    def source(self, name: str, paths: list[Path], schema: pa.Schema) -> ibis.Table:
        """The files as one table; an empty table with ``schema`` when there are none."""

    @abstractmethod
    def epoch_seconds(self, ts: ibis.TimestampValue) -> ibis.FloatingValue:
        """Whole seconds since 1970 of a UTC timestamp, with the engine's own function: Ibis's portable
        ``epoch_seconds`` casts every value through the session's time zone, a tenth of a second per million
        rows in DuckDB."""

    @abstractmethod
    def materialize(self, expr: ibis.Table, table: LakeTable) -> list[DataFile]:
        """Write the expression's rows aside under ``table``; the caller commits them."""

    def close(self) -> None:  # noqa: B027 - engines without resources need no cleanup
        pass

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _entry(table: LakeTable, path: Path) -> DataFile:
    rows = pq.ParquetFile(path).metadata.num_rows
    return DataFile(path=str(path.relative_to(table.directory)), rows=rows, bytes=path.stat().st_size)


class DuckDBEngine(Engine):
    name = "duckdb"

    def __init__(self, threads: int | None = None) -> None:
        self.backend = ibis.duckdb.connect(threads=threads) if threads else ibis.duckdb.connect()
        # Times are UTC everywhere. DuckDB otherwise takes the machine's zone, and Ibis's epoch and hour-of-day
        # on timestamps with a zone go through it: features would shift with the server's location.
        self.backend.raw_sql("SET TimeZone = 'UTC'")

    def epoch_seconds(self, ts: ibis.TimestampValue) -> ibis.FloatingValue:
        return _duckdb_epoch(ts).floor().cast("float64")

    def source(self, name: str, paths: list[Path], schema: pa.Schema) -> ibis.Table:
        if not paths:
            return self.backend.create_table(name, schema.empty_table(), temp=True, overwrite=True)
        return self.backend.read_parquet([str(p) for p in paths], table_name=name)

    def materialize(self, expr: ibis.Table, table: LakeTable) -> list[DataFile]:
        """Streamed through Arrow in batches: Ibis converts each to the expression's declared types (DuckDB's own
        COPY would store its 128-bit integer sums as doubles), and memory stays bounded."""
        table.directory.mkdir(parents=True, exist_ok=True)
        name = f"part-{uuid.uuid4().hex}.parquet"
        tmp = table.directory / f".{name}.tmp"
        schema = expr.schema().to_pyarrow()
        # Ibis 12's own batch reader calls a DuckDB method that 2.0 removed, so stream from DuckDB directly.
        reader = self.backend.con.sql(str(self.backend.compile(expr))).to_arrow_reader(256_000)
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(pa.Table.from_batches([batch]).cast(schema).combine_chunks().to_batches()[0])
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        final = table.directory / name
        os.replace(tmp, final)
        fsync_dir(table.directory)
        return [_entry(table, final)]


class SparkEngine(Engine):
    """Spark through Ibis's PySpark backend; ``local[*]`` on a laptop, a cluster URL in production."""

    name = "spark"

    def __init__(self, master: str = "local[*]", app_name: str = "playnext-pipelines") -> None:
        from pyspark.sql import SparkSession

        self.session = (
            SparkSession.builder.master(master)
            .appName(app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", os.environ.get("PLAYNEXT_SPARK_SHUFFLE_PARTITIONS", "8"))
            .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        self.session.sparkContext.setLogLevel("ERROR")
        self.backend = ibis.pyspark.connect(self.session)

    def epoch_seconds(self, ts: ibis.TimestampValue) -> ibis.FloatingValue:
        return _spark_epoch(ts).cast("float64")

    def source(self, name: str, paths: list[Path], schema: pa.Schema) -> ibis.Table:
        if paths:
            frame = self.session.read.parquet(*[str(p) for p in paths])
        else:
            from ibis.backends.pyspark.datatypes import PySparkSchema

            spark_schema = PySparkSchema.from_ibis(ibis.Schema.from_pyarrow(schema))
            frame = self.session.createDataFrame([], spark_schema)
        frame.createOrReplaceTempView(name)
        return self.backend.table(name)

    def materialize(self, expr: ibis.Table, table: LakeTable) -> list[DataFile]:
        table.directory.mkdir(parents=True, exist_ok=True)
        staging = table.directory / f".spark-{uuid.uuid4().hex}"
        from ibis.backends.pyspark.datatypes import PySparkType

        frame = self.session.sql(str(self.backend.compile(expr)))
        # Store the types Ibis declares (as the DuckDB engine does), not Spark's own (row_number is an int there).
        frame = frame.select(
            *[frame[name].cast(PySparkType.from_ibis(dtype)).alias(name) for name, dtype in expr.schema().items()]
        )
        frame.write.parquet(str(staging), compression="zstd")
        entries = []
        for part in sorted(staging.glob("part-*.parquet")):
            final = table.directory / f"part-{uuid.uuid4().hex}.parquet"
            os.replace(part, final)
            entries.append(_entry(table, final))
        shutil.rmtree(staging, ignore_errors=True)
        fsync_dir(table.directory)
        return entries

    def close(self) -> None:
        self.session.stop()


def build_engine(name: str, *, spark_master: str | None = None) -> Engine:
    if name == "duckdb":
        return DuckDBEngine()
    if name == "spark":
        try:
            import pyspark  # noqa: F401
        except ImportError:
            raise UnknownEngine("the spark engine needs pyspark: pip install 'playnext[spark]'") from None
        return SparkEngine(spark_master or "local[*]")
    raise UnknownEngine(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
