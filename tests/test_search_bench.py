"""``bench/search.py`` on a small catalog: both ways answer every query and the printed ratio is the printed
figures' (timings are not asserted; see the README's benchmarks)."""

from __future__ import annotations

import re

from tests.e2e import run_bench


def test_search_bench_prints_both_ways_and_their_ratio() -> None:
    run = run_bench(
        "search.py", "--tracks", "2000", "--queries", "20", "--pool", "300",
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    pattern = r"44 queries: all titles ([\d.]+) ms, index \(pool 300\) ([\d.]+) ms per query: ([\d.]+) ×"
    times = re.search(pattern, run.stdout)
    assert times is not None, run.stdout
    full, fast, ratio = (float(g) for g in times.groups())
    assert full > 0 and fast > 0
    assert (fast - 0.005) / (full + 0.005) - 0.0005 <= ratio <= (fast + 0.005) / (full - 0.005) + 0.0005  # rounded
    found = dict(re.findall(r"misspelt titles found in the top 20, (all titles|index): (\d+) of 20", run.stdout))
    assert set(found) == {"all titles", "index"} and int(found["all titles"]) >= 10, run.stdout
    assert re.search(r"the same top 20 both ways: \d+ of 44 queries", run.stdout), run.stdout
