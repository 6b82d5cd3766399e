"""The one ``playnext`` command. Each subcommand parses arguments, calls a library function, and prints.

Nothing here holds logic that tests or the HTTP API would have to reach through the CLI.
"""

from __future__ import annotations

import datetime as dt
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from playnext.config import Settings, load_settings
from playnext.records import RejectedLines

app = typer.Typer(
    help="playnext: events in, personalized audio out.", no_args_is_help=True, pretty_exceptions_enable=False
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
events_app = typer.Typer(help="Import events and compact the log into the lake.", no_args_is_help=True)
catalog_app = typer.Typer(help="Import the catalog: tracks, artists, albums, shows, episodes, audiobooks.")
pipeline_app = typer.Typer(help="Feature tables from the lake, on DuckDB or Spark.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(events_app, name="events")
app.add_typer(catalog_app, name="catalog")
app.add_typer(pipeline_app, name="pipeline")

# Tables keep their columns when piped (rich would otherwise assume 80 columns).
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)
SHOWN_PROBLEMS = 20


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.obj


def utc_time(value: str | None, option: str) -> dt.datetime | None:
    """An ISO 8601 time given to ``option``, in UTC when it names no zone; a CLI error otherwise."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not an ISO 8601 time")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@app.callback()
def main_options(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where playnext keeps its data (env PLAYNEXT_DATA_DIR).")
    ] = None,
) -> None:
    try:
        ctx.obj = load_settings(data_dir=data_dir)
    except Exception as exc:  # a bad config file or env var: say which setting, not a traceback
        fail(f"invalid settings: {exc}")


# -- serve ----------------------------------------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: settings.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.port).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Serving processes, about one per core (default: settings.workers, 1)."),
    ] = None,
) -> None:
    """Start the HTTP service (events collector, health, OpenAPI at /openapi.json)."""
    import uvicorn

    from playnext.api.app import SERVER, create_app
    from playnext.api.observability import configure_json_logs
    from playnext.events.log import LogLocked

    settings = settings_of(ctx)
    given = {"host": host, "port": port, "workers": workers}
    settings = settings.model_copy(update={k: v for k, v in given.items() if v is not None})
    configure_json_logs()
    try:
        if settings.workers > 1:
            from playnext.api.workers import WorkersFailing, serve_workers

            try:
                serve_workers(settings)
            except OSError as exc:  # the port, before any worker starts
                fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
            except WorkersFailing as exc:
                fail(str(exc))
            return
        application = create_app(settings)
        uvicorn.run(
            application,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            log_config=None,  # keep the JSON lines configured above
            access_log=False,
            **SERVER,  # type: ignore[arg-type]
            timeout_graceful_shutdown=10,
        )
    except LogLocked as exc:
        fail(str(exc))


# -- keys -----------------------------------------------------------------------------------------------------


class ScopeName(StrEnum):
    ingest = "ingest"
    read = "read"
    admin = "admin"


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    scope: Annotated[list[ScopeName], typer.Option(help="Scope(s) of the key; repeat for several.")],
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
    rate: Annotated[
        float | None,
        typer.Option(min=0, help="Requests/s this key may make per replica (default: rate_limit_per_s; 0: no limit)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the key.")] = False,
) -> None:
    """Make a key. It is shown once; only its hash is stored."""
    from playnext.api.keys import KeyStore

    key, token = KeyStore(settings_of(ctx).keys_file).create([s.value for s in scope], name=name, rate_per_s=rate)
    if quiet:
        print(token)
    else:
        out.print(f"key id {key.key_id}, scopes {', '.join(key.scopes)}. Keep it now; it is not shown again:")
        print(token)


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """List keys (ids, names, scopes, state); secrets are never shown."""
    from playnext.api.keys import KeyStore

    table = Table("key id", "name", "scopes", "rate/s", "created", "state")
    for key in KeyStore(settings_of(ctx).keys_file).list():
        created = dt.datetime.fromtimestamp(key.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
        rate = "default" if key.rate_per_s is None else ("unlimited" if key.rate_per_s == 0 else f"{key.rate_per_s:g}")
        state = "revoked" if key.revoked_at else "active"
        table.add_row(key.key_id, key.name, ", ".join(key.scopes), rate, created, state)
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: str) -> None:
    """Revoke a key; requests with it are refused from then on."""
    from playnext.api.keys import KeyStore, UnknownKey

    try:
        KeyStore(settings_of(ctx).keys_file).revoke(key_id)
    except UnknownKey as exc:
        fail(str(exc))
    out.print(f"revoked {key_id}")


# -- events ---------------------------------------------------------------------------------------------------


def count_progress(unit: str) -> Progress:
    """A progress bar counting ``unit`` (listeners…) on stderr, shown only on a terminal."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn(f"{{task.completed:,}}/{{task.total:,}} {unit}"),
        TimeRemainingColumn(), console=err, transient=True, disable=not err.is_terminal,
    )  # fmt: skip


def _bytes_progress(total: int) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _finish_import(path: Path, rejected: RejectedLines, summary: str) -> None:
    """Name each rejected line as FILE:LINE, print the summary, and exit 1 if anything was rejected."""
    for line, reason in rejected.shown[:SHOWN_PROBLEMS]:
        err.print(f"{path}:{line}: {reason}", highlight=False, markup=False, soft_wrap=True)
    if rejected.count > SHOWN_PROBLEMS:
        err.print(f"... and {rejected.count - SHOWN_PROBLEMS:,} more rejected lines in {path}", highlight=False)
    out.print(f"{path}: {summary}, {rejected.count:,} lines rejected", highlight=False)
    if rejected.count:
        raise typer.Exit(1)


@events_app.command("import")
def events_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="NDJSON (.ndjson/.jsonl/.json), CSV or Parquet file of events.")],
    format: Annotated[str | None, typer.Option("--format", help="ndjson | csv | parquet (default: by suffix).")] = None,
    url: Annotated[
        str | None, typer.Option(help="Send to a running `playnext serve` at this URL instead of the local log.")
    ] = None,
    key: Annotated[
        str | None, typer.Option(envvar="PLAYNEXT_KEY", help="Ingest key for --url (env PLAYNEXT_KEY).")
    ] = None,
) -> None:
    """Import events with the same validation, dedup and durability as the HTTP API.

    Bad lines are reported as FILE:LINE and skipped; good lines are kept. Exits 1 if any line was rejected.
    While `playnext serve` runs it owns the log: import through it with --url and --key.
    """
    from contextlib import AbstractContextManager

    from playnext.events.collector_client import CollectorClient, CollectorError
    from playnext.events.importer import import_events
    from playnext.events.log import LogLocked, event_log_for
    from playnext.events.validation import Clock
    from playnext.privacy.tombstones import Tombstones
    from playnext.records import UnreadableFile

    settings = settings_of(ctx)
    clock = Clock(dt.timedelta(seconds=settings.max_clock_skew_s))
    if url and not key:
        fail("--url needs an ingest key: --key or PLAYNEXT_KEY")
    target: AbstractContextManager = CollectorClient(url, key or "") if url else event_log_for(settings)
    try:
        if not file.is_file():
            raise UnreadableFile(f"{file}: no such file")
        size = file.stat().st_size
        with target as sink, _bytes_progress(size) as progress:
            task = progress.add_task(f"importing {file.name}", total=size)
            report = import_events(
                file,
                sink.append,
                clock,
                fmt=format,
                chunk_size=min(settings.max_batch_events, 10_000) if url else 10_000,
                on_progress=lambda done: progress.update(task, completed=done),
                tombstones=None if url else Tombstones(settings.tombstones_file),
            )
    except (LogLocked, UnreadableFile, CollectorError) as exc:
        fail(str(exc))
    _finish_import(
        file, report.rejected, f"{report.accepted:,} events stored, {report.duplicates:,} duplicates skipped"
    )


@events_app.command("compact")
def events_compact(ctx: typer.Context) -> None:
    """Fold sealed log segments into the lake (Parquet by event date). Safe to rerun; safe to kill."""
    from playnext.events.compaction import CorruptSegment, compact
    from playnext.privacy.tombstones import Tombstones

    settings = settings_of(ctx)
    try:
        with _bytes_progress(0) as progress:
            task = progress.add_task("compacting", total=None)
            result = compact(
                settings.log_dir,
                settings.lake_dir,
                segment_max_bytes=settings.segment_max_bytes,
                commit_bytes=settings.compact_commit_bytes,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
                tombstones=Tombstones(settings.tombstones_file),
            )
    except CorruptSegment as exc:
        fail(str(exc))
    out.print(
        f"compacted {len(result.segments)} segment(s): {result.events:,} events into {result.files} file(s) "
        f"across {len(result.partitions)} day(s)",
        highlight=False,
    )


# -- catalog --------------------------------------------------------------------------------------------------


@catalog_app.command("import")
def catalog_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV, NDJSON or Parquet file of one catalog kind.")],
    kind: Annotated[
        str | None, typer.Option(help="artists | albums | tracks | shows | episodes | audiobooks (default: file name).")
    ] = None,
    format: Annotated[str | None, typer.Option("--format", help="ndjson | csv | parquet (default: by suffix).")] = None,
) -> None:
    """Import catalog records; a record with an id already present replaces it. Exits 1 if any line was rejected."""
    from playnext.catalog.store import UnknownKind, import_catalog
    from playnext.records import UnreadableFile

    settings = settings_of(ctx)
    try:
        size = file.stat().st_size if file.is_file() else 0
        with _bytes_progress(size) as progress:
            task = progress.add_task(f"importing {file.name}", total=size)
            report = import_catalog(
                file, settings.catalog_dir, kind, fmt=format, on_progress=lambda d: progress.update(task, completed=d)
            )
    except (UnknownKind, UnreadableFile) as exc:
        fail(str(exc))
    _finish_import(
        file,
        report.rejected,
        f"{report.imported:,} {report.kind} imported ({report.replaced:,} replaced); "
        f"{report.total:,} {report.kind} in the catalog",
    )


# -- pipeline -------------------------------------------------------------------------------------------------


@pipeline_app.command("run")
def pipeline_run(
    ctx: typer.Context,
    engine: Annotated[str | None, typer.Option(help="duckdb | spark (default: settings.pipelines.engine).")] = None,
    spark_master: Annotated[
        str | None, typer.Option(help="Spark master URL, e.g. local[*] or spark://host:7077.")
    ] = None,
    tables: Annotated[
        list[str] | None, typer.Option("--tables", help="Tables to build (repeat, or comma-separated); default all.")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Rebuild every table from all events.")] = False,
    as_of: Annotated[
        str | None, typer.Option(help="Reference time (ISO 8601) instead of the newest event; implies --full.")
    ] = None,
) -> None:
    """Build feature tables from the lake: incremental where a table allows it, each committed atomically."""
    from playnext.pipelines.engine import UnknownEngine
    from playnext.pipelines.inputs import EmptyLake
    from playnext.pipelines.runner import UnknownTable, run_pipeline

    chosen = [t.strip() for item in tables or [] for t in item.split(",") if t.strip()] or None
    reference = utc_time(as_of, "--as-of")
    table = Table("table", "mode", "rows", "files", "seconds")
    with err.status("starting the engine…") as status:

        def on_table(name: str, run: object) -> None:
            if run is None:
                status.update(f"building {name}…")
            else:
                table.add_row(name, run.mode, f"{run.rows:,}", str(run.files), f"{run.seconds:.2f}")  # type: ignore[attr-defined]

        try:
            run_pipeline(
                settings_of(ctx),
                engine=engine,
                spark_master=spark_master,
                tables=chosen,
                full=full,
                as_of=reference,
                on_table=on_table,
            )
        except (UnknownEngine, UnknownTable, EmptyLake) as exc:
            fail(str(exc))
    out.print(table)


# -- sql ------------------------------------------------------------------------------------------------------


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def sql(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="SQL over the views events, tracks, artists, albums, shows, …")],
    format: Annotated[OutputFormat, typer.Option("--format", help="How to print the result.")] = OutputFormat.table,
    max_rows: Annotated[int, typer.Option(help="Rows shown in table format.")] = 100,
) -> None:
    """Query the lake and the catalog with DuckDB."""
    import duckdb

    from playnext.lake.query import connect

    con = connect(settings_of(ctx))
    try:
        result = con.sql(query)
        rows = result.to_arrow_table() if result is not None else None
    except duckdb.Error as exc:
        fail(str(exc).strip())
    if rows is None:
        return
    if format is OutputFormat.csv:
        import pyarrow.csv as pacsv

        pacsv.write_csv(rows, sys.stdout.buffer)
    elif format is OutputFormat.json:
        import msgspec

        sys.stdout.buffer.write(msgspec.json.encode(rows.to_pylist()) + b"\n")
    else:
        table = Table(*rows.column_names)
        for row in rows.slice(0, max_rows).to_pylist():
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        out.print(table)
        if rows.num_rows > max_rows:
            err.print(f"{rows.num_rows - max_rows:,} more rows (use --max-rows, or --format csv)")


# -- simulate -------------------------------------------------------------------------------------------------


@app.command()
def simulate(
    ctx: typer.Context,
    users: Annotated[int, typer.Option(min=1, help="Listeners.")] = 1000,
    tracks: Annotated[
        int, typer.Option(min=20, help="Tracks (artists, albums, podcasts and audiobooks scale).")
    ] = 5000,
    days: Annotated[int, typer.Option(min=1, help="Days of history.")] = 28,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same world.")] = 7,
    start: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD) (default: DAYS before today).")] = None,
    replace: Annotated[bool, typer.Option(help="Replace events and catalog already in the lake.")] = False,
) -> None:
    """Simulate a catalog and listeners with hidden tastes; write history to the lake and the truth beside it."""
    from playnext.synth.simulate import LakeNotEmpty
    from playnext.synth.simulate import simulate as run_simulation
    from playnext.synth.world import WorldParams

    try:
        first = dt.date.fromisoformat(start) if start else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days)
        params = WorldParams(users=users, tracks=tracks, days=days, seed=seed, start=first)
        params.validate()
    except ValueError as exc:
        fail(str(exc))
    settings = settings_of(ctx)
    with count_progress("listeners") as progress:
        task = progress.add_task("simulating", total=users)
        try:
            result = run_simulation(
                settings, params, replace=replace, on_progress=lambda d, t: progress.update(task, completed=d)
            )
        except LakeNotEmpty as exc:
            fail(str(exc))
    out.print(
        f"simulated {result.users:,} listeners and {result.tracks:,} tracks over {days} days from {first}: "
        f"{result.events:,} events in {result.seconds:.1f} s; ground truth in {settings.synth_dir}",
        highlight=False,
    )


def main() -> None:
    app()


# Stage ③'s and ④'s commands live in their own modules and register themselves on ``app``.
from playnext import cli_experiments, cli_models, cli_privacy, cli_surfaces  # noqa: E402, F401

if __name__ == "__main__":
    # Run the ``playnext.cli`` module's app, on which ``cli_models`` registered its commands (not ``__main__``'s).
    from playnext.cli import main as registered_main

    registered_main()
