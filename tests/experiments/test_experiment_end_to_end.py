"""An experiment as a team runs one: two model versions as variants behind a real server, simulated listeners
reacting to what each variant shows them, the server's impressions compacted into the lake, then
``playnext experiment analyze``, ``ramp`` and ``ope`` from the command line."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path

import httpx
import msgspec
import pytest

from playnext.config import Settings
from playnext.events.schema import Impression
from playnext.experiments.assignment import Assigner
from playnext.lake.query import connect
from playnext.synth.respond import Listeners
from playnext.synth.world import load_world
from tests.e2e import Server, env_for, playnext

pytestmark = pytest.mark.slow
USERS = 800


def test_a_worse_model_version_loses_its_experiment(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = env_for(data, compact_interval_s="0.5", segment_max_age_s="0.5")
    playnext("simulate", "--users", str(USERS), "--tracks", "800", "--days", "14", env=env)
    popular = playnext("train", "--generators", "popularity", "--no-ranker", env=env).stdout
    worse = re.search(r"published model version (\S+);", popular).group(1)  # type: ignore[union-attr]
    playnext("train", "--generators", "popularity,als,cooccurrence", "--promote", env=env, timeout=300)
    experiments = {"recs": {
        "variants": {"control": {"share": 0.5}, "popular": {"share": 0.5, "model_version": worse}},
        "success_metrics": ["stream_rate"], "guardrails": [{"metric": "skip_rate", "margin": 0.05}],
        "planned_sample_size": USERS,
    }}  # fmt: skip
    env["PLAYNEXT_EXPERIMENTS"] = json.dumps(experiments)
    settings = Settings(data_dir=data, experiments=experiments)
    key = playnext(
        "keys", "create", "--scope", "read", "--scope", "ingest", "--rate", "0", "-q", env=env
    ).stdout.strip()
    auth = {"Authorization": f"Bearer {key}"}
    listeners = Listeners(load_world(settings.synth_dir), seed=3)
    server = Server(env)
    try:
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            for i in range(USERS):
                user = f"u{i}"
                body = client.get(f"/v1/users/{user}/discover-weekly").json()
                assert body["variant"] == Assigner(settings.experiments).assign(user)[0].label
                events = listeners.respond_events(
                    user, [item["item_id"] for item in body["items"]], request_id=f"sim-{i}",
                    surface="sim", at=dt.datetime.now(dt.UTC),
                )  # fmt: skip
                home = client.get(f"/v1/users/{user}/home").json()
                cards = [card["item_id"] for shelf in home["shelves"] for card in shelf["items"]]
                events += listeners.respond_events(user, cards, request_id=f"home-{i}", surface="sim",
                                                   at=dt.datetime.now(dt.UTC))  # fmt: skip
                reactions = [e for e in events if not isinstance(e, Impression)]  # the server logged those
                if reactions:
                    posted = client.post("/v1/events", content=msgspec.json.encode(reactions))
                    assert posted.status_code == 200, posted.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the server folds its log into the lake by itself
            # Both surfaces' pages: the last Home page is logged after the last Discover Weekly, and may reach the
            # lake a compaction later (waiting for Discover Weekly alone once left one Home page out of the OPE).
            shown = connect(settings).execute(
                "SELECT count(DISTINCT user_id) FILTER (WHERE surface = 'discover-weekly'), "
                "count(DISTINCT user_id) FILTER (WHERE surface LIKE 'home/%') FROM events WHERE type = 'impression'"
            ).fetchone()  # fmt: skip
            if shown == (USERS, USERS):
                break
            time.sleep(0.5)
    finally:
        server.stop()
    # The simulated listeners play the lists through, up to a couple of hours past now.
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    result = json.loads(playnext("experiment", "analyze", "recs", "--json", "--as-of", later, env=env).stdout)
    expected = {"control": 0, "popular": 0}
    for i in range(USERS):
        expected[Assigner(settings.experiments).assign(f"u{i}")[0].variant] += 1
    assert result["listeners"] == expected and not result["sample_ratio"]["mismatch"]
    stream_rate = next(r for r in result["results"] if r["metric"] == "stream_rate")
    assert stream_rate["relative"] < 0 and result["verdict"] != "ship", stream_rate  # popularity is worse
    assert result["final"] and result["verdict"] == "no-ship"
    assert (data / "experiments" / "recs" / "report.html").is_file()
    assert "; no-ship (as of" in playnext("experiment", "list", env=env).stdout
    started = playnext("experiment", "ramp", "recs", env=env)
    assert "started at 1%" in started.stdout
    ope = playnext("experiment", "ope", "--target", "uniform", "--reward", "streamed_30s", "--as-of", later, env=env)
    assert "IPS" in ope.stdout and "DR" in ope.stdout and f"{USERS:,} pages" in ope.stdout, ope.stdout
