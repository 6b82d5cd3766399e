"""The analysis read from the lake: metric values by hand on a tiny world, then ``playnext experiment analyze``
and ``ramp`` on a larger one, with their looks, reports, dashboard data and the SRM gauge."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from playnext.config import Settings
from playnext.experiments.analysis import BLOCKED, KEEP_RUNNING, SHIP, UnknownExperiment, analyze
from playnext.experiments.assignment import Assigner
from playnext.experiments.metrics import listener_metrics
from playnext.experiments.ramp import LiveTreatments, current_shares, ramp_step
from tests.e2e import env_for, playnext
from tests.pipelines.lake import T0, ev, write_events

AS_OF = T0 + dt.timedelta(days=30)


def test_metrics_of_each_listener_by_hand(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    day = 24 * 60
    write_events(settings, [
        # u1 (control) before exposure: one stream, one skip
        ev("play", "a1", "u1", "t1", -2 * day, ms_played=200_000),
        ev("skip", "a2", "u1", "t2", -2 * day + 5, ms_played=3_000),
        ev("impression", "i1", "u1", "t3", 0, surface="discover-weekly", position=0, request_id="r1",
           variant="other:x,dw:control", propensity=1.0),
        # after: the shown track streamed, a save, a short play (not a stream), and a return two days later
        ev("play", "a3", "u1", "t3", 1, ms_played=120_000),
        ev("save", "a4", "u1", "t3", 2),
        ev("play", "a5", "u1", "t4", 3, ms_played=10_000),
        ev("play", "a6", "u1", "t5", 2 * day, ms_played=60_000),
        # u2 (treatment): exposed, skipped what was shown, nothing else
        ev("impression", "i2", "u2", "t3", 10, surface="discover-weekly", position=0, request_id="r2",
           variant="dw:treatment", propensity=1.0),
        ev("skip", "a7", "u2", "t3", 11, ms_played=2_000),
        # u3 shown both variants: an assignment fault, left out; u4 is in another experiment only
        ev("impression", "i3", "u3", "t3", 0, surface="home/x", position=0, request_id="r3", variant="dw:control",
           propensity=1.0),
        ev("impression", "i4", "u3", "t3", 5, surface="home/x", position=0, request_id="r4", variant="dw:treatment",
           propensity=1.0),
        ev("impression", "i5", "u4", "t3", 5, surface="home/x", position=0, request_id="r5", variant="other:x",
           propensity=1.0),
    ])  # fmt: skip
    names = ["streams", "minutes", "saves", "skips", "return_rate", "skip_rate", "stream_rate", "reward"]
    found = listener_metrics(settings, "dw", names, AS_OF, pre_days=14)
    assert found.conflicting == 1 and found.counts() == {"control": 1, "treatment": 1}
    rows = {r["user_id"]: r for r in found.table.to_pylist()}
    u1, u2 = rows["u1"], rows["u2"]
    assert (u1["streams__num"], u1["pre__streams__num"]) == (2, 1)
    assert u1["minutes__num"] == pytest.approx((120_000 + 10_000 + 60_000) / 60_000)
    assert (u1["saves__num"], u1["skips__num"], u1["pre__skips__num"]) == (1, 0, 1)
    assert (u1["return_rate__num"], u2["return_rate__num"]) == (1, 0)
    assert (u1["skip_rate__num"], u1["skip_rate__den"], u2["skip_rate__num"], u2["skip_rate__den"]) == (0, 3, 1, 1)
    assert (u1["stream_rate__num"], u1["stream_rate__den"], u2["stream_rate__num"]) == (1, 1, 0)
    # engagement reward: streamed 1 + saved 2 (+ returned 0.5: u1 played again 1-7 days later)
    assert u1["reward__num"] == pytest.approx(3.5) and u2["reward__num"] == pytest.approx(-1.0)
    sample = found.sample("skip_rate", "treatment")
    assert sample.num.tolist() == [1.0] and sample.den.tolist() == [1.0]


def _world(settings: Settings, users: int, treatment_lift: float, drop_treatment: float = 0.0,
           seed: int = 0) -> Assigner:  # fmt: skip
    """Listeners with a pre-period and an exposure through the real assigner; treatment streams more."""
    rng = np.random.default_rng(seed)
    assigner = Assigner(settings.experiments)
    records, n = [], 0
    for i in range(users):
        user = f"u{i}"
        got = assigner.assign(user)
        if not got:
            continue
        variant = got[0].variant
        if variant == "treatment" and rng.random() < drop_treatment:
            continue  # this client never logged its exposure
        activity = rng.gamma(2.0, 1.5)
        for j in range(rng.poisson(activity * 3)):
            n += 1
            records.append(ev("play", f"p{n}", user, f"t{j}", -3 * 24 * 60 + j, ms_played=60_000))
        records.append(ev("impression", f"i{i}", user, "t1", 60 + i % 50, surface="discover-weekly", position=0,
                          request_id=f"r{i}", variant=got[0].label, propensity=1.0))  # fmt: skip
        rate = activity * (1 + treatment_lift if variant == "treatment" else 1.0)
        for j in range(rng.poisson(rate * 3)):
            n += 1
            records.append(ev("play", f"p{n}", user, f"t{j}", 120 + j, ms_played=60_000))
    write_events(settings, records)
    return assigner


def _settings(tmp_path: Path, **exp: object) -> Settings:
    definition = {
        "variants": {"control": {"share": 0.5}, "treatment": {"share": 0.5}},
        "success_metrics": ["streams"],
        "guardrails": [{"metric": "skip_rate", "margin": 0.02}],
        **exp,
    }
    return Settings(data_dir=tmp_path / "data", experiments={"dw": definition})  # fmt: skip


def test_analyze_ships_a_real_improvement_and_records_its_looks(tmp_path: Path) -> None:
    settings = _settings(tmp_path, planned_sample_size=1200, guardrails=[{"metric": "minutes", "margin": 0.05}])
    _world(settings, 1200, treatment_lift=0.25)
    first = analyze(settings, "dw", as_of=AS_OF)
    assert first.verdict == SHIP and first.variant == "treatment", first.reasons
    streams = next(r for r in first.results if r.metric == "streams")
    assert streams.better and 0.15 < streams.relative < 0.35 and streams.variance_reduction > 0.2
    assert first.look == 1 and first.fraction == pytest.approx(sum(first.listeners.values()) / 1200)
    again = analyze(settings, "dw", as_of=AS_OF)  # no new listeners: the same look, no alpha spent
    assert (
        again.look == 1 and len(json.loads((settings.experiments_dir / "dw" / "looks.json").read_text())["looks"]) == 1
    )
    no_cuped = analyze(settings, "dw", as_of=AS_OF, cuped=False, record=False)
    assert next(r for r in no_cuped.results if r.metric == "streams").variance_reduction == 0


def test_analyze_blocks_a_broken_split_and_the_server_reports_it(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from playnext.api.app import create_app

    settings = _settings(tmp_path)
    _world(settings, 4000, treatment_lift=0.0, drop_treatment=0.25)
    result = analyze(settings, "dw", as_of=AS_OF)
    assert result.verdict == BLOCKED and result.sample_ratio["mismatch"]
    assert any("fixed-horizon" in r for r in result.reasons)
    with TestClient(create_app(settings)) as client:
        assert 'playnext_experiment_srm_detected{experiment="dw"} 1.0' in client.get("/metrics").text
    from playnext.web.data import experiments

    shown = experiments(settings)[0]
    assert shown["verdict"] == BLOCKED and shown["effects"] and "sample ratio" in shown["reasons"][0]


def test_analyze_cli_writes_table_json_and_html(tmp_path: Path) -> None:
    definition = json.dumps({"dw": {"variants": {"control": {"share": 0.5}, "treatment": {"share": 0.5}},
                                    "success_metrics": ["streams"], "planned_sample_size": 4000}})  # fmt: skip
    env = env_for(tmp_path / "data", experiments=definition)
    settings = Settings(data_dir=tmp_path / "data", experiments=json.loads(definition))
    _world(settings, 600, treatment_lift=0.0)
    table = playnext("experiment", "analyze", "dw", "--as-of", AS_OF.isoformat(), env=env)
    assert KEEP_RUNNING in table.stdout and "streams" in table.stdout
    as_json = json.loads(
        playnext("experiment", "analyze", "dw", "--json", "--as-of", AS_OF.isoformat(), env=env).stdout
    )
    assert as_json["verdict"] == KEEP_RUNNING and as_json["fraction"] < 1 and as_json["results"]
    report = (tmp_path / "data" / "experiments" / "dw" / "report.html").read_text()
    assert "Plotly" in report and "Relative effect" in report
    assert "keep running" in playnext("experiment", "list", env=env).stdout
    bad = playnext("experiment", "analyze", "nope", env=env, check=False)
    assert bad.returncode == 2 and "no experiment 'nope'" in bad.stderr
    assert playnext("experiment", "analyze", "dw", "--as-of", "yesterday", env=env, check=False).returncode == 2


def test_unknown_metrics_and_params_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown metric 'clicks'"):
        _settings(tmp_path, success_metrics=["clicks"])
    for params, problem in [({"cap": 1}, "no parameter 'cap'"), ({"per_artist": 0}, "per_artist must be a int")]:
        treatment = {"share": 0.5, "params": {"discover-weekly": params}}
        with pytest.raises(ValueError, match=problem):
            _settings(tmp_path, variants={"control": {"share": 0.5}, "treatment": treatment})
    with pytest.raises(ValueError, match="ramp stages"):
        _settings(tmp_path, ramp=[0.5, 0.1])
    with pytest.raises(UnknownExperiment):
        analyze(_settings(tmp_path), "nope")


def test_ramp_advances_while_guardrails_hold_and_halts_when_one_breaks(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ramp=[0.1, 0.5, 1.0])
    treatments = LiveTreatments(settings, check_s=0.0)
    everyone = [f"u{i}" for i in range(3000)]
    assert sum(treatments.of(u).label is not None for u in everyone) == 3000  # never ramped: full traffic
    assert ramp_step(settings, "dw").action == "started" and current_shares(settings) == {"dw": 0.1}
    at_ten = {u: treatments.of(u).label for u in everyone if treatments.of(u).label}
    assert 200 < len(at_ten) < 400
    _world(Settings(data_dir=settings.data_dir, experiments=settings.experiments), 0, 0.0)  # an empty lake
    assert ramp_step(settings, "dw", min_listeners=50).action == "held"
    # Exposure at 10 %, no harm: advance to 50 %, and every listener already in keeps their variant.
    ramped = Settings(data_dir=settings.data_dir, experiments=settings.experiments)
    _events_for(ramped, at_ten, skips_in_treatment=False)
    step = ramp_step(settings, "dw", min_listeners=50, as_of=AS_OF)
    assert step.action == "advanced" and step.share == 0.5, step.reasons
    at_half = {u: treatments.of(u).label for u in everyone if treatments.of(u).label}
    assert all(at_half[u] == label for u, label in at_ten.items()) and len(at_half) > 1200
    # The treatment now makes listeners skip: the skip-rate guardrail breaks and the ramp halts at 0 %.
    _events_for(ramped, {u: v for u, v in at_half.items() if u not in at_ten}, skips_in_treatment=True)
    env = env_for(settings.data_dir, experiments=json.dumps({"dw": settings.experiments["dw"].model_dump()}))
    halted = playnext("experiment", "ramp", "dw", "--min-listeners", "50", env=env, check=False)
    assert halted.returncode == 1 and halted.stdout.startswith("dw: halted; now 0%") and "skip_rate" in halted.stdout
    assert current_shares(settings) == {"dw": 0.0} and treatments.of(everyone[0]).label is None
    history = json.loads((settings.experiments_dir / "dw" / "ramp.json").read_text())["history"]
    assert [h["share"] for h in history] == [0.1, 0.5] and history[-1]["action"] == "halted"
    assert "Effects over the ramp" in (settings.experiments_dir / "dw" / "report.html").read_text()
    assert "the ramp is halted" in playnext("experiment", "ramp", "dw", env=env, check=False).stdout


def _events_for(settings: Settings, labels: dict[str, str], skips_in_treatment: bool) -> None:
    rng = np.random.default_rng(len(labels))
    records = []
    for user, label in labels.items():
        uid = f"{user}-{len(labels)}"
        records.append(ev("impression", f"i{uid}", user, "t1", 60, surface="discover-weekly", position=0,
                          request_id=f"r{uid}", variant=label, propensity=1.0))  # fmt: skip
        skip_p = 0.6 if skips_in_treatment and label.endswith("treatment") else 0.2
        for j in range(10):
            kind = "skip" if rng.random() < skip_p else "play"
            records.append(
                ev(kind, f"e{uid}-{j}", user, f"t{j}", 61 + j, ms_played=60_000 if kind == "play" else 2_000)
            )
    write_events(settings, records)


def test_undefined_effects_are_null_in_json_never_nan(tmp_path: Path) -> None:
    """return_rate is 0 in both variants here (nobody came back yet): its relative effect is undefined."""
    settings = _settings(tmp_path)
    _world(settings, 200, treatment_lift=0.0)
    result = analyze(settings, "dw", as_of=AS_OF)
    rate = next(r for r in result.to_json()["results"] if r["metric"] == "return_rate")
    assert rate["relative"] is None
    from playnext.experiments.report import as_json

    json.loads(as_json(result), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    saved = (settings.experiments_dir / "dw" / "analysis.json").read_text()
    assert "NaN" not in saved


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b"[1, 2]"])
def test_a_broken_state_file_is_named_and_never_restarts_anything_silently(tmp_path: Path, content: bytes) -> None:
    from fastapi.testclient import TestClient

    from playnext.api.app import create_app
    from playnext.web.data import experiments

    settings = _settings(tmp_path, planned_sample_size=1000)
    _world(settings, 200, treatment_lift=0.0)
    directory = settings.experiments_dir / "dw"
    directory.mkdir(parents=True)
    for name in ("looks.json", "ramp.json", "analysis.json"):
        (directory / name).write_bytes(content)
    env = env_for(settings.data_dir, experiments=json.dumps({"dw": settings.experiments["dw"].model_dump()}))
    for command in (["analyze", "dw"], ["ramp", "dw"], ["list"]):
        failed = playnext("experiment", *command, env=env, check=False)
        assert failed.returncode == 2 and "restore it or delete it" in failed.stderr, (command, failed.stderr)
        assert "Traceback" not in failed.stderr
    assert (directory / "looks.json").read_bytes() == content  # left for the operator to look at
    assert current_shares(settings) == {"dw": 0.0}  # serving stops the experiment rather than guess its ramp
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 200
    assert experiments(settings)[0]["verdict"] == "unreadable analysis"
