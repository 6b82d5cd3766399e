"""``playnext train | models | eval | datasets | rewards``: stage ③ from the command line.

Registered on the one ``playnext`` app by ``playnext.cli``; each command calls a library function and prints.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from playnext.cli import app, err, fail, out, settings_of, utc_time

models_app = typer.Typer(help="List, promote and roll back model versions.", no_args_is_help=True)
datasets_app = typer.Typer(help="Public datasets as playnext events and catalog.", no_args_is_help=True)
rewards_app = typer.Typer(help="Named, versioned reward definitions.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(datasets_app, name="datasets")
app.add_typer(rewards_app, name="rewards")


class Format(StrEnum):
    table = "table"
    json = "json"


def _cutoff(settings: Any, holdout: float | None, cutoff: str | None) -> dt.datetime | None:
    from playnext.models.data import cutoff_at_share

    if holdout is not None and cutoff is not None:
        fail("give --holdout or --cutoff, not both")
    if cutoff is not None:
        return utc_time(cutoff, "--cutoff")
    if holdout is not None:
        try:
            return cutoff_at_share(settings, holdout)
        except ValueError as exc:
            fail(str(exc))
    return None


def _configure(
    settings: Any, generators: str | None, engine: str | None, ranker: bool | None, reward: str | None
) -> Any:
    from playnext.models.generators import UnknownGenerator, build_generator

    changes: dict[str, Any] = {}
    if generators:
        names = [g.strip() for g in generators.split(",") if g.strip()]
        for name in names:
            try:
                build_generator(name)
            except UnknownGenerator as exc:
                fail(str(exc))
        changes["generators"] = names
    if engine:
        if engine not in ("duckdb", "spark"):
            fail(f"unknown engine {engine!r}; choose duckdb or spark")
        changes["engine"] = engine
    if ranker is not None:
        changes["ranker"] = ranker
    if reward:
        if reward not in settings.rewards:
            fail(f"unknown reward {reward!r}; configured: {', '.join(sorted(settings.rewards))}")
        changes["reward"] = reward
    if not changes:
        return settings
    return settings.model_copy(update={"models": settings.models.model_copy(update=changes)})


def _metrics_table(reports: list[Any], k: int) -> Table:
    table = Table(
        "model",
        f"recall@{k}",
        f"ndcg@{k}",
        "coverage",
        "diversity",
        "novelty",
        "ndcg new",
        "ndcg light",
        "ndcg heavy",
        "users",
    )
    for r in reports:
        row = r.row("all")
        seg = [f"{r.metrics[s][f'ndcg@{k}']:.4f}" if s in r.metrics else "-" for s in ("new", "light", "heavy")]
        table.add_row(
            r.name,
            f"{row[f'recall@{k}']:.4f}",
            f"{row[f'ndcg@{k}']:.4f}",
            f"{row['coverage']:.3f}",
            f"{row['diversity']:.3f}",
            f"{row['novelty']:.2f}",
            *seg,
            f"{r.users['all']:,}",
        )
    return table


def _lake_errors() -> tuple[type[Exception], ...]:
    from playnext.models.registry import RegistryError
    from playnext.pipelines.inputs import EmptyLake
    from playnext.rewards.definitions import UnknownReward

    return (EmptyLake, RegistryError, UnknownReward, ValueError)


Holdout = Annotated[float | None, typer.Option(help="Hold out the newest share of events (e.g. 0.2) and evaluate.")]
Cutoff = Annotated[str | None, typer.Option(help="Train on events before this ISO 8601 time; evaluate after.")]
Generators = Annotated[str | None, typer.Option(help="Comma-separated generators (default: settings.models).")]
Engine = Annotated[str | None, typer.Option(help="ALS trainer: duckdb (implicit, in process) | spark.")]
RankerOpt = Annotated[bool | None, typer.Option("--ranker/--no-ranker", help="Train the LightGBM ranker.")]
RewardOpt = Annotated[str | None, typer.Option(help="Reward that labels the ranker's training data.")]
K = Annotated[int, typer.Option(min=1, max=1000, help="List length K of the metrics.")]


@app.command()
def train(
    ctx: typer.Context,
    holdout: Holdout = None,
    cutoff: Cutoff = None,
    generators: Generators = None,
    engine: Engine = None,
    ranker: RankerOpt = None,
    reward: RewardOpt = None,
    k: K = 20,
    promote: Annotated[bool, typer.Option(help="Serve the new version at once.")] = False,
) -> None:
    """Train generators and ranker on the lake, evaluate on the holdout, and publish an immutable version."""
    from playnext.models.training import train_version

    settings = _configure(settings_of(ctx), generators, engine, ranker, reward)
    when = _cutoff(settings, holdout, cutoff)
    with err.status("training…") as status:
        try:
            version_id, run, reports = train_version(
                settings, when, k=k, promote=promote, on_step=lambda msg: status.update(msg + "…")
            )
        except _lake_errors() as exc:
            fail(str(exc))
    if reports:
        out.print(_metrics_table(reports, k))
    timings = ", ".join(f"{name} {s:.1f}s" for name, s in run.timings.items())
    served = " and serving it" if promote else f"; serve it with `playnext models promote {version_id}`"
    out.print(f"published model version {version_id}{served}\n{timings}", highlight=False)


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    versions: Annotated[list[str] | None, typer.Argument(help="Versions to compare (default: every version).")] = None,
    holdout: Holdout = None,
    cutoff: Cutoff = None,
    generators: Generators = None,
    engine: Engine = None,
    ranker: RankerOpt = None,
    reward: RewardOpt = None,
    k: K = 20,
    format: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """Offline evaluation, full ranking, per segment, side by side.

    With --holdout/--cutoff: train the configured stack on the events before the cutoff (nothing is published)
    and compare it with each of its generators on the events after. Otherwise compare registered versions, each
    on the events after its own training data."""
    from playnext.evaluation.offline import evaluate_stack, evaluate_version, report_json
    from playnext.models.data import load_holdout
    from playnext.models.registry import Registry
    from playnext.models.training import train as train_stack

    settings = _configure(settings_of(ctx), generators, engine, ranker, reward)
    when = _cutoff(settings, holdout, cutoff)
    reports: list[Any] = []
    try:
        if when is not None:
            with err.status("training at the cutoff…") as status:
                run = train_stack(settings, when, on_step=lambda msg: status.update(msg + "…"))
                status.update("evaluating…")
                reports = evaluate_stack(run.recommender, run.data, load_holdout(settings, run.data, when), k)
        else:
            registry = Registry(settings)
            ids = versions or [v["id"] for v in registry.list() if v["status"] in ("ok", "served")]
            if not ids:
                fail("no model versions yet: run `playnext train`, or pass --holdout to evaluate a configuration")
            for version_id in ids:
                with err.status(f"evaluating {version_id}…"):
                    got = evaluate_version(settings, registry.load(version_id), k)
                if not got:
                    err.print(f"{version_id}: no events after its training data yet; nothing to evaluate")
                reports += got
    except _lake_errors() as exc:
        fail(str(exc))
    if format is Format.json:
        sys.stdout.write(json.dumps(report_json(reports), indent=2) + "\n")
    elif reports:
        out.print(_metrics_table(reports, k))


@models_app.command("list")
def models_list(ctx: typer.Context, k: K = 20) -> None:
    """Every version: when, on what data, with which metrics, and which one is served."""
    from playnext.models.registry import Registry, RegistryError

    try:
        versions = Registry(settings_of(ctx)).list()
    except RegistryError as exc:
        fail(str(exc))
    table = Table("version", "status", "created", "cutoff", "generators", "users", f"ndcg@{k}")
    for v in versions:
        ndcg = next(
            (
                m["metrics"]["all"].get(f"ndcg@{k}")
                for m in v.get("metrics", [])
                if m["name"] == "recommender" and "all" in m["metrics"]
            ),
            None,
        )
        table.add_row(
            v["id"],
            v["status"],
            str(v.get("created", ""))[:19],
            str(v.get("cutoff") or "-")[:19],
            ",".join(v.get("generators", [])),
            f"{v.get('data', {}).get('users', 0):,}",
            f"{ndcg:.4f}" if ndcg is not None else "-",
        )
    out.print(table)


@models_app.command("promote")
def models_promote(ctx: typer.Context, version: str) -> None:
    """Serve VERSION (verified first); running servers switch within settings.models.reload_interval_s."""
    from playnext.models.registry import Registry, RegistryError

    try:
        Registry(settings_of(ctx)).promote(version)
    except RegistryError as exc:
        fail(str(exc))
    out.print(f"serving {version}", highlight=False)


@models_app.command("rollback")
def models_rollback(ctx: typer.Context) -> None:
    """Serve the previously served version again."""
    from playnext.models.registry import Registry, RegistryError

    try:
        version = Registry(settings_of(ctx)).rollback()
    except RegistryError as exc:
        fail(str(exc))
    out.print(f"rolled back: serving {version}", highlight=False)


@datasets_app.command("import")
def datasets_import(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="movielens-100k")],
    replace: Annotated[bool, typer.Option(help="Replace events and catalog already in the lake.")] = False,
) -> None:
    """Turn a dataset shipped inside an installed package into playnext events and catalog."""
    from playnext.datasets.movielens import DATASETS, DatasetMissing, import_movielens
    from playnext.synth.simulate import LakeNotEmpty

    if name not in DATASETS:
        fail(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    try:
        result = import_movielens(settings_of(ctx), replace=replace)
    except (DatasetMissing, LakeNotEmpty) as exc:
        fail(str(exc))
    out.print(
        f"imported {result.name}: {result.ratings:,} ratings of {result.users:,} listeners on "
        f"{result.items:,} movies as {result.events:,} events",
        highlight=False,
    )


@rewards_app.command("list")
def rewards_list(ctx: typer.Context) -> None:
    """Configured rewards and every registered version."""
    from playnext.rewards.definitions import list_rewards, register_reward

    settings = settings_of(ctx)
    for name in settings.rewards:
        register_reward(settings, name)
    table = Table("reward", "weights")
    for reward in list_rewards(settings):
        weights = ", ".join(f"{k}={v:g}" for k, v in reward.weights.model_dump().items() if v)
        table.add_row(reward.ref, weights)
    out.print(table)
