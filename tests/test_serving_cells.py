"""How ``bench/serving.py`` makes a cell of its rounds: interleaved with the hello-world, the median ratio."""

from __future__ import annotations

import pytest
from bench.serving import measure_cell

from tests.e2e import run_bench


class Scripted:
    """A ``measure`` that answers set rates in turn and records which paths it was asked for, in order."""

    def __init__(self, rates: list[float]) -> None:
        self.rates, self.asked = list(rates), []  # type: ignore[var-annotated]

    def __call__(self, paths: list[str], c: int) -> tuple[float, list[float], float, float]:
        self.asked.append(paths[0])
        rate = self.rates.pop(0)
        return rate, [1 / rate] * int(rate), 1e6 / rate, 10.0


def test_rounds_interleave_with_the_hello_world_and_the_median_ratio_is_the_cell() -> None:
    # hello 100, route 60, hello 100, route 20 (a hiccup), hello 60, route 40, hello 100
    measure = Scripted([100, 60, 100, 20, 60, 40, 100])
    cell = measure_cell("daily-mixes", ["/route"], ["/hello"], 8, 3, measure)
    assert measure.asked == ["/hello", "/route", "/hello", "/route", "/hello", "/route", "/hello"]
    assert cell.ratios == pytest.approx([0.6, 0.25, 0.5])
    assert cell.ratio == pytest.approx(0.5)  # one bad round does not make the cell
    assert cell.rate == pytest.approx(40) and cell.hello == pytest.approx(90)
    # CPU per request over all the rounds' requests, not the mean of the rounds' figures
    assert cell.server_us == pytest.approx(1e6 * 3 / 120)
    assert measure.rates == []


def test_the_hello_world_cell_is_its_rounds_alone() -> None:
    measure = Scripted([100, 120])
    cell = measure_cell("hello-world", ["/hello"], ["/hello"], 1, 2, measure)
    assert measure.asked == ["/hello", "/hello"]
    assert cell.ratio == 1.0 and cell.ratios == [1.0, 1.0] and cell.rate == pytest.approx(110)


@pytest.mark.parametrize("args", [("--rounds", "0"), ("--seconds", "0"), ("--rounds", "-2")])
def test_a_cell_needs_a_round_of_some_length(args: tuple[str, str]) -> None:
    run = run_bench("serving.py", *args, timeout=120)
    assert run.returncode == 2 and "--rounds must be at least 1 and --seconds above 0" in run.stderr
