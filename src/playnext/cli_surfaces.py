"""``playnext batch discover-weekly | daily-mix | home``: precompute stage ④'s batch surfaces into the online store.

Registered on the one ``playnext`` app by ``playnext.cli``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

import typer

from playnext.cli import app, count_progress, fail, out, settings_of

batch_app = typer.Typer(
    help="Precompute surfaces for every listener into the online store (run daily, e.g. from cron).",
    no_args_is_help=True,
)
app.add_typer(batch_app, name="batch")

Day = Annotated[str | None, typer.Option("--day", help="The day to compute for (YYYY-MM-DD); default today (UTC).")]
Version = Annotated[str | None, typer.Option("--version", help="Model version; default the promoted one.")]


def _run(ctx: typer.Context, surfaces: list[str], day: str | None, version_id: str | None) -> None:
    from playnext.experiments.ramp import LiveTreatments
    from playnext.models.registry import Registry, RegistryError
    from playnext.online.store import StoreUnavailable, open_store
    from playnext.privacy.tombstones import Tombstones, placeholders
    from playnext.surfaces.precomputed import precompute

    settings = settings_of(ctx)
    try:
        when = dt.date.fromisoformat(day) if day else dt.datetime.now(dt.UTC).date()
    except ValueError:
        fail(f"--day {day!r} is not a date (YYYY-MM-DD)")
    registry = Registry(settings)
    try:
        wanted = version_id or registry.current_id()
        if wanted is None:
            fail("no model version is promoted yet: run `playnext train --promote` first")
        version = registry.load(wanted)
    except RegistryError as exc:
        fail(str(exc))
    users = int((~placeholders(version.data.users)).sum())  # a forgotten listener's row is nobody's
    started = time.perf_counter()
    store = open_store(settings)
    try:
        with count_progress("listeners") as progress:
            task = progress.add_task(", ".join(surfaces), total=users)
            written = precompute(version, store, surfaces, when, treatments=LiveTreatments(settings),
                                 tombstones=Tombstones(settings.tombstones_file),
                                 on_progress=lambda done: progress.update(task, completed=done))  # fmt: skip
    except StoreUnavailable as exc:
        fail(str(exc), code=1)
    finally:
        store.close()
    seconds = time.perf_counter() - started
    counts = ", ".join(f"{surface} {count:,}" for surface, count in written.items())
    out.print(
        f"precomputed for {users:,} listeners ({counts}) from model version {version.id} for {when} "
        f"in {seconds:.1f} s ({users / max(seconds, 1e-9):,.0f} listeners/s)",
        highlight=False,
    )


@batch_app.command("discover-weekly")
def batch_discover_weekly(ctx: typer.Context, day: Day = None, version: Version = None) -> None:
    """30 never-played tracks per listener for the ISO week of --day."""
    _run(ctx, ["discover-weekly"], day, version)


@batch_app.command("daily-mix")
def batch_daily_mix(ctx: typer.Context, day: Day = None, version: Version = None) -> None:
    """Up to six mixes per listener."""
    _run(ctx, ["daily-mix"], day, version)


@batch_app.command("home")
def batch_home(ctx: typer.Context, day: Day = None, version: Version = None) -> None:
    """Home's shelves per listener (their order is still chosen per request)."""
    _run(ctx, ["home"], day, version)


@batch_app.command("all")
def batch_all(ctx: typer.Context, day: Day = None, version: Version = None) -> None:
    """Every batch surface, ranking each listener's candidates once for all of them."""
    _run(ctx, ["discover-weekly", "daily-mix", "home"], day, version)
