"""``playnext experiment ...``: list, plan, analyze and ramp experiments. Registered on ``playnext.cli``'s app."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from playnext.cli import app, fail, out, settings_of, utc_time

experiment_app = typer.Typer(help="A/B tests: plan, analyze, ramp; off-policy estimates.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("list")
def experiment_list(ctx: typer.Context) -> None:
    """Configured experiments with their layer, traffic, variants and last verdict."""
    from playnext.experiments.analysis import BrokenState, latest_analysis

    settings = settings_of(ctx)
    if not settings.experiments:
        out.print("no experiments are configured ([experiments.NAME] in playnext.toml)")
    for name, exp in sorted(settings.experiments.items()):
        try:
            last = latest_analysis(settings, name)
        except BrokenState as exc:
            fail(str(exc))
        verdict = f"{last['verdict']} (as of {last['as_of']})" if last else "not analysed yet"
        shares = ", ".join(f"{v} {spec.share:.0%}" for v, spec in sorted(exp.variants.items()))
        out.print(f"{name}: layer {exp.layer}, traffic {exp.traffic:.0%}, {'running' if exp.running else 'stopped'}; "
                  f"{shares}; {verdict}", highlight=False)  # fmt: skip


@experiment_app.command("analyze")
def experiment_analyze(
    ctx: typer.Context,
    name: str,
    as_json: bool = typer.Option(False, "--json", help="Print the analysis as JSON instead of a table."),
    html: Path | None = typer.Option(None, help="Write the HTML report here (default: in the experiment's folder)."),
    as_of: str | None = typer.Option(None, help="Analyse the lake as of this time (ISO); default now."),
    record: bool = typer.Option(True, help="Count this analysis as a look of the sequential test and keep it."),
    cuped: bool = typer.Option(True, help="Adjust for the pre-exposure period (CUPED)."),
) -> None:
    """Effects with repeated confidence intervals, CUPED, the sample ratio check and the verdict."""
    from playnext.experiments.analysis import BrokenState, UnknownExperiment, analyze, experiment_dir
    from playnext.experiments.report import as_json as to_json
    from playnext.experiments.report import as_table, write_html

    settings = settings_of(ctx)
    try:
        result = analyze(settings, name, as_of=utc_time(as_of, "--as-of"), record=record, cuped=cuped)
    except (UnknownExperiment, BrokenState) as exc:
        fail(str(exc))
    report = write_html(result, html or experiment_dir(settings, name) / "report.html")
    if as_json:
        print(to_json(result))
        return
    out.print(as_table(result))
    for reason in result.reasons:
        out.print(f"- {reason}", highlight=False)
    out.print(f"report: {report}", highlight=False)


@experiment_app.command("plan")
def experiment_plan(
    ctx: typer.Context,
    effect: float = typer.Option(..., help="Smallest absolute effect worth detecting, in the metric's unit."),
    sd: float = typer.Option(..., help="Per-listener standard deviation of the metric (after CUPED if used)."),
    power: float = typer.Option(0.8, min=0.5, max=0.999),
    alpha: float = typer.Option(0.05, min=1e-6, max=0.5),
    looks: int = typer.Option(1, min=1, max=20, help="Equally spaced analyses planned."),
) -> None:
    """The planned sample size (both variants together) for a two-variant experiment."""
    from playnext.experiments.statistics import sample_size

    try:
        per_variant = sample_size(effect, sd, alpha=alpha, power=power, looks=looks)
    except ValueError as exc:
        fail(str(exc))
    out.print(f"planned_sample_size = {2 * per_variant}  ({per_variant:,} listeners per variant, {looks} look(s), "
              f"power {power:.0%} at alpha {alpha:g})", highlight=False)  # fmt: skip


@experiment_app.command("ramp")
def experiment_ramp(
    ctx: typer.Context,
    name: str,
    min_listeners: int = typer.Option(100, min=1, help="Exposed listeners a stage needs before it is judged."),
    html: Path | None = typer.Option(None, help="Write the HTML report with the ramp plot here."),
) -> None:
    """Start the ramp, or advance it one stage if the guardrails hold (halt it if they do not)."""
    from playnext.experiments.analysis import BrokenState, UnknownExperiment, experiment_dir
    from playnext.experiments.ramp import ramp_step
    from playnext.experiments.report import write_html

    settings = settings_of(ctx)
    try:
        step = ramp_step(settings, name, min_listeners=min_listeners)
    except (UnknownExperiment, BrokenState) as exc:
        fail(str(exc))
    out.print(f"{name}: {step.action}; now {step.share:.0%} of its traffic", highlight=False)
    for reason in step.reasons:
        out.print(f"- {reason}", highlight=False)
    if step.analysis is not None:
        report = write_html(step.analysis, html or experiment_dir(settings, name) / "report.html", ramp=step.history)
        out.print(f"report: {report}", highlight=False)
    if step.action == "halted":
        raise typer.Exit(1)


@experiment_app.command("ope")
def experiment_ope(
    ctx: typer.Context,
    target: str = typer.Option("greedy", help="Home shelf policy to evaluate: uniform, greedy or thompson."),
    days: float = typer.Option(28.0, min=0.01, help="Evaluate on the Home pages of the last DAYS days."),
    reward: str | None = typer.Option(None, help="Reward to value pages by (default: settings.models.reward)."),
    as_of: str | None = typer.Option(None, help="End of the window (ISO); default now."),
) -> None:
    """Off-policy estimates (IPS, SNIPS, doubly robust) of another Home shelf policy from the logged pages."""
    from playnext.evaluation.home_policy import TARGETS, home_estimates
    from playnext.models.registry import Registry, RegistryError
    from playnext.rewards.definitions import UnknownReward

    settings = settings_of(ctx)
    if target not in TARGETS:
        fail(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
    end = utc_time(as_of, "--as-of") or dt.datetime.now(dt.UTC)
    registry = Registry(settings)
    try:
        current = registry.current_id()
        if current is None:
            fail("no model version is served: train and promote one first (the segments come from it)", code=1)
        version = registry.load(current)
        found = home_estimates(settings, version, target, end - dt.timedelta(days=days), end, reward)
    except (RegistryError, UnknownReward, ValueError) as exc:
        fail(str(exc), code=1)
    out.print(f"Home, reward per page, {found['logged'].requests:,} pages; target policy: {target}", highlight=False)
    for name, e in found.items():
        label = "logged policy (on-policy mean)" if name == "logged" else name.upper()
        out.print(f"  {label:32} {e.value:8.4f}  95% CI [{e.low:.4f}, {e.high:.4f}]", highlight=False)
