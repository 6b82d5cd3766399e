"""The experiment system's figures on the simulator's closed loop: A/A false-positive rate, A/B power against the
planned one, sample-ratio detection, off-policy interval coverage.

    python bench/experiments.py [--aa 400] [--ab 200] [--ope 100]

The same checks as ``tests/experiments/test_acceptance.py``, with more repetitions and the numbers printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playnext.synth.experiment import ExperimentLoop
from playnext.synth.experiment_checks import aa_tests, ab_tests, ope_coverage, srm_check
from playnext.synth.world import WorldParams, build_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aa", type=int, default=400, help="A/A experiments")
    parser.add_argument("--ab", type=int, default=200, help="A/B experiments")
    parser.add_argument("--ope", type=int, default=100, help="off-policy repetitions")
    args = parser.parse_args()
    loop = ExperimentLoop(build_world(WorldParams(users=3000, tracks=2000, days=1, seed=3)), pool=60, seed=11)
    t0 = time.perf_counter()
    aa = aa_tests(loop, runs=args.aa)
    print(f"A/A: {aa.runs} experiments, 3 sequential looks each: false-positive rate {aa.false_positive_rate:.3f} "
          f"(alpha 0.05); CUPED variance reduction on streams {aa.variance_reduction:.0%}")  # fmt: skip
    ab = ab_tests(loop, runs=args.ab)
    print(f"A/B: {ab.runs} experiments at the planned {ab.planned:,} listeners (true effect {ab.effect:.3f} "
          f"streams per listener, pilot {ab.pilot_effect:.3f}): shipped {ab.detected:.3f}, "
          f"planned power {ab.power:.2f}")  # fmt: skip
    srm = srm_check(loop)
    print(f"SRM: healthy split p = {srm.healthy_p:.3f}; 10% of one variant's exposure lost: p = {srm.broken_p:.2g}, "
          f"verdict {srm.broken_verdict}")  # fmt: skip
    ope = ope_coverage(loop, repeats=args.ope)
    cover = ", ".join(f"{m.upper()} {c:.2f} (width {ope.width[m]:.3f})" for m, c in ope.coverage.items())
    print(f"OPE: target value {ope.truth:.3f} (logging {ope.logging_value:.3f}); 95% interval coverage: {cover}")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
