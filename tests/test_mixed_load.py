"""A mixed load (ingest and every surface at 8 connections) on a real server: no errors, and memory that levels
off instead of growing with the requests served (``bench/load.py`` runs the same for a minute)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e import run_bench

pytestmark = pytest.mark.slow


def test_mixed_load_has_no_errors_and_bounded_memory(tmp_path: Path) -> None:
    run = run_bench(
        "load.py", "--seconds", "30", "--connections", "8", "--users", "300", "--tracks", "800",
        "--data", str(tmp_path / "data"),
        timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "errors: 0" in run.stdout
    served = {
        m[0]: int(m[1].replace(",", ""))
        for m in re.findall(r"^  (\S+)\s+([\d,]+)\s+[\d.]+\s+[\d.]+$", run.stdout, re.M)
    }
    assert set(served) == {"ingest", "home", "discover-weekly", "daily-mixes", "next", "blend", "search"}
    assert min(served.values()) > 20, served
    first, second = map(float, re.search(r"first half (\d+) MiB, of the second (\d+)", run.stdout).groups())
    assert second <= first * 1.25 + 32, run.stdout  # levels off: no growth with every request served
