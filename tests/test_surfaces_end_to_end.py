"""Every surface as a client sees it: a simulated world, a trained and promoted version, a real server."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from playnext.config import Settings
from playnext.lake.query import connect
from tests.e2e import Server, env_for, playnext

pytestmark = pytest.mark.slow


def test_every_surface_answers_on_a_simulated_world_and_its_impressions_reach_the_lake(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data", compact_interval_s="0.5", segment_max_age_s="0.5")
    playnext("simulate", "--users", "300", "--tracks", "800", "--days", "14", env=env)
    playnext("train", "--generators", "popularity,popularity_country,als,cooccurrence", "--promote", env=env)
    batch = playnext("batch", "all", env=env, timeout=300)
    assert "discover-weekly 300, daily-mix 300, home 300" in batch.stdout, batch.stdout
    bad = playnext("batch", "discover-weekly", "--day", "next tuesday", env=env, check=False)
    assert bad.returncode == 2 and "--day 'next tuesday' is not a date" in bad.stderr
    key = playnext("keys", "create", "--scope", "read", "--quiet", env=env).stdout.strip()
    auth = {"Authorization": f"Bearer {key}"}
    server = Server(env)
    try:
        for path in ["/v1/users/u4/discover-weekly", "/v1/users/u4/daily-mixes", "/v1/users/u4/home"]:
            assert httpx.get(server.url + path, headers=auth, timeout=30).json()["source"] == "precomputed", path
        paths = [
            "/v1/users/u1/home?size=5", "/v1/users/u1/discover-weekly", "/v1/users/u1/daily-mixes",
            "/v1/users/u1/next?track=t5&recent=t6,t7", "/v1/blend?users=u1,u2,u3", "/v1/search?q=kalo&user=u1",
            "/v1/users/brand-new/home?country=SE", "/v1/users/brand-new/discover-weekly?country=SE",
        ]  # fmt: skip
        request_ids = []
        for path in paths:
            got = httpx.get(server.url + path, headers=auth, timeout=30)
            assert got.status_code == 200, (path, got.text)
            body = got.json()
            ids = [m["request_id"] for m in body["mixes"]] if "mixes" in body else [body["request_id"]]
            request_ids += ids
            items = (
                [i for s in body["shelves"] for i in s["items"]] if "shelves" in body
                else [i for m in body.get("mixes", [body]) for i in m["items"]]
            )  # fmt: skip
            assert items and all(i["reason"] for i in items), path
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the server seals and compacts its log by itself
            found = connect(Settings(data_dir=tmp_path / "data")).execute(
                "SELECT DISTINCT request_id FROM events WHERE type = 'impression'").fetchall()  # fmt: skip
            stored = {row[0] for row in found}
            if set(request_ids) <= stored:
                break
            time.sleep(0.5)
        assert set(request_ids) <= stored
        mixes = [httpx.get(f"{server.url}/v1/users/u{u}/daily-mixes", headers=auth, timeout=30).json()["mixes"]
                 for u in range(10, 40)]  # fmt: skip
        assert max(map(len, mixes)) > 1 and all(len({m["request_id"] for m in ms}) == 1 for ms in mixes)
        text = httpx.get(server.url + "/metrics", timeout=30).text
        counted = re.findall(r'playnext_surface_answers_total\{source="\w+",surface="daily-mix"\} (\S+)', text)
        assert sum(map(float, counted)) == 2 + 30  # one answer per request, however many mixes it holds
    finally:
        server.stop()
