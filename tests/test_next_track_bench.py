"""``bench/next_track.py``: the transitions it draws, and a run on a small world."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from bench.next_track import transitions

from tests.e2e import run_bench


def test_a_transition_stays_within_one_listeners_session() -> None:
    rng = np.random.default_rng(3)
    users = np.sort(rng.choice(np.array([f"u{i}" for i in range(40)], dtype=object), 600))
    ts = np.zeros(len(users))
    for u in np.unique(users):
        rows = np.flatnonzero(users == u)
        ts[rows] = np.cumsum(rng.choice([60.0, 600.0, 4000.0], len(rows)))  # some gaps over the 1800 s below
    chosen, starts = transitions(users, ts, 1800.0, 1000, np.random.default_rng(0))
    assert len(chosen) and len(set(users[chosen])) == len(chosen)  # one per listener
    for target, start in zip(chosen, starts, strict=True):
        assert start < target
        assert set(users[start : target + 1]) == {users[target]}
        assert (np.diff(ts[start : target + 1]) <= 1800.0).all()
        assert start == 0 or users[start - 1] != users[start] or ts[start] - ts[start - 1] > 1800.0
    # Every listener with a session of two plays or more has a transition, and ``cases`` caps them.
    with_pairs = {users[i] for i in range(1, len(users)) if users[i] == users[i - 1] and ts[i] - ts[i - 1] <= 1800}
    assert set(users[chosen]) == with_pairs
    assert len(transitions(users, ts, 1800.0, 5, np.random.default_rng(0))[0]) == 5


@pytest.mark.timeout(900)  # a world simulated and trained at a cutoff: about a minute alone on two cores
def test_the_bench_weighs_each_search_setting_on_real_next_plays(tmp_path: Path) -> None:
    run = run_bench(
        "next_track.py", "--data", str(tmp_path / "data"), "--users", "300", "--tracks", "800",
        "--days", "4", "--holdout", "0.3", "--cases", "150",
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    cases = int(re.search(r"; ([\d,]+) cases from", run.stdout)[1].replace(",", ""))  # type: ignore[index]
    assert 0 < cases <= 150, run.stdout
    rows = re.findall(r"^(served|exact)\b.*?\s([\d.]+)\s+([\d.]+)\s+([+-][\d.]+) ± ([\d.]+)\s+([\d.]+)\s+[\d,]+\s+"
                      r"([\d.]+)$", run.stdout, re.M)  # fmt: skip
    assert [r[0] for r in rows] == ["served", "exact"], run.stdout  # a catalog this small has no voyager index
    for _, hit, mrr, diff, _, as_exact, _ in rows:
        assert 0.0 <= float(mrr) <= float(hit) <= 1.0
        assert float(as_exact) == 1.0  # without an index the served search is exact
        assert float(diff) == 0.0
    assert float(rows[0][1]) > 0, run.stdout  # the co-occurrence and SASRec signals find some next plays
