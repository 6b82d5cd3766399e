"""``bench/serving.py`` on a small world: every surface answers 200 on a real server, and each cell is printed
with the hello-world measured around each of its rounds. Timings are not asserted (see the README's benchmarks)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from playnext.online.local import LocalStore
from playnext.surfaces.precomputed import SURFACES
from tests.e2e import run_bench

pytestmark = pytest.mark.slow
ROW = re.compile(r"^(\S+)\s+(\d+)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)-([\d.]+)\s+(\d+)"
                 r"\s+(\d+|-)$", re.M)  # fmt: skip


def test_serving_bench_prints_each_surface_beside_the_hello_world(tmp_path: Path) -> None:
    run = run_bench(
        "serving.py", "--users", "300", "--tracks", "800", "--days", "3", "--seconds", "0.3",
        "--concurrency", "2", "--data", str(tmp_path / "data"),
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    # Each benchmarked listener was given a day's recent plays through ingest before anything was measured.
    filled = re.search(r"sessions: (\d+) listeners × 100 recent plays \(20 in the current session\)", run.stdout)
    with sqlite3.connect(tmp_path / "data" / "online" / "online.sqlite3") as db:
        held = dict(db.execute("SELECT user_id, n FROM recent").fetchall())
    assert filled and len(held) == int(filled[1]) > 100 and set(held.values()) == {100}, run.stdout
    rows = {(m[0], int(m[1])): m for m in ROW.findall(run.stdout)}
    routes = {"hello-world", "app-hello", "home", "next-track", "discover-weekly", "daily-mixes", "blend", "search"}
    assert set(rows) == {(r, 2) for r in routes}, run.stdout
    for (route, _), (_, _, rate, _, _, hello, ratio, low, high, server_us, client_us) in rows.items():
        rate, hello = float(rate.replace(",", "")), float(hello.replace(",", ""))
        assert rate > 0 and hello > 0
        assert int(server_us) > 0 and int(client_us) > 0, route  # both do work for every request
        assert 0 < float(low) <= float(ratio) <= float(high), route  # the median of the cell's rounds
        if route == "hello-world":
            assert float(ratio) == float(low) == float(high) == 1.0
    # The same world served by two workers (``python -m bench.serving_app``, as ``playnext serve --workers 2``),
    # loaded by two client processes.
    two = run_bench(
        "serving.py", "--users", "300", "--tracks", "800", "--days", "3", "--seconds", "0.3",
        "--concurrency", "2", "--data", str(tmp_path / "data"), "--no-batch", "--workers", "2", "--clients", "2",
        "--routes", "discover-weekly", "--rounds", "1",
        timeout=900,
    )  # fmt: skip
    assert two.returncode == 0, two.stdout + two.stderr
    assert {(m[0], int(m[1]), m[-1]) for m in ROW.findall(two.stdout)} == {("hello-world", 2, "-"),
                                                                        ("discover-weekly", 2, "-")}  # fmt: skip
    # And with the online store in Redis (``--redis``), every precomputed list copied there.
    on_redis = run_bench(
        "serving.py", "--users", "300", "--tracks", "800", "--days", "3", "--seconds", "0.3",
        "--concurrency", "2", "--data", str(tmp_path / "data"), "--no-batch", "--redis",
        "--routes", "discover-weekly", "next-track", "--rounds", "1",
        timeout=900,
    )  # fmt: skip
    assert on_redis.returncode == 0, on_redis.stdout + on_redis.stderr
    copied = re.search(r"online store: Redis on loopback, ([\d,]+) lists copied", on_redis.stdout)
    local = LocalStore(tmp_path / "data" / "online" / "online.sqlite3")
    stored = sum(1 for surface in SURFACES for _ in local.all_lists(surface))  # the batch's snapshots and the rows
    local.close()
    assert copied and int(copied[1].replace(",", "")) == stored > 0, on_redis.stdout
    assert {(m[0], int(m[1])) for m in ROW.findall(on_redis.stdout)} == {
        ("hello-world", 2), ("discover-weekly", 2), ("next-track", 2)}  # fmt: skip
