"""``bench/precomputed.py`` on a small world: a row per paged surface, with what it reads and weighs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e import run_bench


@pytest.mark.timeout(900)  # a world simulated, trained and precomputed: about a minute alone on two cores
def test_the_bench_times_the_rendered_answer_against_the_pages_and_weighs_the_values(tmp_path: Path) -> None:
    run = run_bench(
        "precomputed.py", "--data", str(tmp_path / "data"), "--users", "300", "--tracks", "800",
        "--days", "4", "--sample", "100", "--rounds", "2",
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    rows = {
        m[0]: [float(x) for x in m[1:]]
        for m in re.findall(r"^(daily-mix|discover-weekly)" + r"\s+([\d.]+)" * 8 + r"$", run.stdout, re.M)
    }
    assert set(rows) == {"daily-mix", "discover-weekly"}, run.stdout
    for read, rendered, pages, ratio, unpack, value, packed, unpacked in rows.values():
        assert min(read, rendered, pages, ratio, unpack) > 0
        assert 0 < packed < unpacked and packed < value, run.stdout  # the pages are stored packed
