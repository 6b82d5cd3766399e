"""The dashboard in a real browser (Playwright driving Debian's Chromium) against a real server: every plot renders
with data, and the data route needs an admin key."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import event
from tests.e2e import Server, env_for, playnext

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_dashboard_plots_live_data(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/setup.sh installs it)")
    from playwright.sync_api import sync_playwright

    env = env_for(tmp_path / "data", compact_interval_s="1", segment_max_age_s="1")
    playnext("simulate", "--users", "40", "--tracks", "200", "--days", "3", env=env)
    playnext("train", "--generators", "popularity,als,cooccurrence", "--promote", env=env, timeout=300)
    env["PLAYNEXT_EXPERIMENTS"] = json.dumps({"dash": {
        "variants": {"control": {"share": 0.5},
                     "capped": {"share": 0.5, "params": {"discover-weekly": {"per_artist": 1}}}},
        "success_metrics": ["streams"],
    }})  # fmt: skip
    admin = playnext("keys", "create", "--scope", "admin", "--rate", "0", "-q", env=env).stdout.strip()
    auth = {"Authorization": f"Bearer {admin}"}
    server = Server(env)
    try:
        for n in range(3):
            body = [event(event_id=f"dash-{n}-{i}", user_id=f"u{i % 7}") for i in range(50)]
            assert httpx.post(f"{server.url}/v1/events", json=body, headers=auth).status_code == 200
        for path in ["/v1/users/u1/home", "/v1/users/u2/discover-weekly", "/v1/users/u3/next?track=t4"]:
            assert httpx.get(server.url + path, headers=auth, timeout=30).status_code == 200
        for n in range(40):  # exposure for the experiment, listening after it, then its analysis
            assert httpx.get(f"{server.url}/v1/users/u{n}/discover-weekly", headers=auth).status_code == 200
        now = dt.datetime.now(dt.UTC).isoformat()
        after = [event(event_id=f"after-{n}-{i}", user_id=f"u{n}", ts=now, ms_played=60_000 * (1 + i))
                 for n in range(40) for i in range(n % 4)]  # fmt: skip
        assert httpx.post(f"{server.url}/v1/events", json=after, headers=auth).status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the server has compacted the exposure into the lake
            peek = json.loads(playnext("experiment", "analyze", "dash", "--json", "--no-record", env=env).stdout)
            if min(peek["listeners"].values()) >= 2:
                break
            time.sleep(1)
        verdict = json.loads(playnext("experiment", "analyze", "dash", "--json", env=env).stdout)["verdict"]
        assert httpx.get(f"{server.url}/v1/dashboard").status_code == 401
        data = httpx.get(f"{server.url}/v1/dashboard", headers=auth).json()
        assert data["served"] and data["latency"] and [m["id"] for m in data["models"]] == [data["served"]]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                        "--disable-background-networking"])  # fmt: skip
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{server.url}/dashboard#key={admin}")
            assert "#key" not in page.url  # the key leaves the address bar at once
            for plot in ("ingest", "types", "latency", "models"):
                page.wait_for_selector(f"#{plot} .main-svg", timeout=20_000)
            # Data, not empty frames: the ingest line has points once two samples exist, bars have heights.
            page.wait_for_function("document.getElementById('ingest').data[0].y.length > 0", timeout=20_000)
            page.wait_for_function(
                "Object.values(document.getElementById('types').data[0].y).some(v => v > 0)", timeout=30_000
            )
            latency = page.evaluate("document.getElementById('latency').data.map(t => t.y.filter(v => v > 0).length)")
            assert all(n >= 1 for n in latency), latency
            assert page.evaluate("document.getElementById('models').data[0].x.length") >= 1
            assert page.locator("#served").inner_text().startswith("serving ")
            assert f"dash\t{verdict}" in page.locator("#experiments").inner_text()
            page.wait_for_selector("#experiment-effects .main-svg", timeout=20_000)
            assert page.evaluate("document.getElementById('experiment-effects').data[0].x.length") >= 1
            assert not errors, errors
            browser.close()
    finally:
        server.stop()
