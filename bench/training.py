"""Training and retrieval: playnext's wrappers against the libraries called directly, in the same run.

    python bench/training.py [--users 10000 100000 1000000] [--tracks 50000] [--days 3] [--stack]

1. ALS through ``playnext`` (``build_generator("als")`` on an ``Interactions``) against ``implicit``'s
   ``AlternatingLeastSquares.fit`` on the very same CSR matrix with the same parameters, interleaved, best of
   ``--repeat``: the ratio is playnext's overhead (goal ≤ 1.1×).
2. voyager: queries/s and recall@10 of the HNSW index over the ALS item vectors against exact NumPy search
   (a matrix product and argpartition) of the same queries.
3. Training time of each in-process generator at each listener count. Interactions come from the simulator's
   listening model (``block_events``) over ``--days`` days, aggregated in NumPy without touching the lake, so the
   1M-listener matrix fits this machine; ``--stack`` also times a whole ``playnext train`` (generators, ranker,
   content embeddings, SASRec) on a simulated lake of the smallest size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playnext.index.ann import ItemIndex, recall_at_k
from playnext.models.generators import build_generator
from playnext.models.interactions import Interactions, top_n
from playnext.synth.matrix import interactions
from playnext.synth.world import WorldParams

ALS_PARAMS = {"factors": 64, "regularization": 0.05, "alpha": 2.0, "iterations": 10, "seed": 0}


def als_overhead(data: Interactions, repeat: int) -> None:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    ours, direct = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        build_generator("als", ALS_PARAMS).fit(data)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=64, regularization=0.05, alpha=2.0, iterations=10, random_state=0, calculate_training_loss=False
            )
            model.fit(data.matrix, show_progress=False)
        direct.append(time.perf_counter() - t0)
    print(
        f"ALS fit on {data.n_users:,} × {data.n_items:,} ({data.matrix.nnz:,} nonzeros), best of {repeat}: "
        f"playnext {min(ours):.2f} s, implicit directly {min(direct):.2f} s, ratio {min(ours) / min(direct):.3f}"
    )


def ann_vs_exact(data: Interactions, queries: int = 2000) -> None:
    als = build_generator("als", ALS_PARAMS).fit(data)
    items = als.item_factors_
    q = als.user_vectors(np.arange(min(queries, data.n_users)))
    q = q[np.abs(q).sum(axis=1) > 0]  # a listener without a vector has no top 10 to find
    # Both searches cover the same items: those with a vector (items nobody played have none).
    empty = ~np.abs(items).sum(axis=1).astype(bool)

    def exact(block: np.ndarray) -> np.ndarray:
        scores = block @ items.T
        scores[:, empty] = -np.inf
        return top_n(scores, 10).items

    t0 = time.perf_counter()
    exact_items = np.concatenate([exact(q[lo : lo + 256]) for lo in range(0, len(q), 256)])
    exact_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = ItemIndex(ef=200).build(items)
    build_s = time.perf_counter() - t0
    print(f"voyager index over {int((~empty).sum()):,} item vectors ({items.shape[1]}-d) built in {build_s:.1f} s")
    print(f"{'search':>22} {'queries/s':>10} {'recall@10':>10} {'× exact q/s':>12}")
    print(f"{'exact NumPy (batched)':>22} {len(q) / exact_s:>10,.0f} {1.0:>10.3f} {1.0:>12.2f}")
    unsorted = ItemIndex(ef=200, by_norm=False).build(items)  # inserted in index order: what by_norm fixes
    for label, idx in (("voyager", index), ("index order", unsorted)):
        for ef in (50, 100, 200, 400):
            idx.ef = ef
            t0 = time.perf_counter()
            got, _ = idx.query(q, 10)
            s = time.perf_counter() - t0
            print(
                f"{label + ' ef=' + str(ef):>22} {len(q) / s:>10,.0f} {recall_at_k(got, exact_items):>10.3f} "
                f"{(len(q) / s) / (len(q) / exact_s):>12.2f}"
            )
    # One listener at a time: what a request does; exact search pays the whole matrix product per query.
    t0 = time.perf_counter()
    for row in q[:300]:
        exact(row[None, :])
    single_exact = 300 / (time.perf_counter() - t0)
    index.ef = 200
    t0 = time.perf_counter()
    for row in q[:300]:
        index.query(row[None, :], 10)
    single_ann = 300 / (time.perf_counter() - t0)
    print(
        f"one query at a time: exact {single_exact:,.0f}/s, voyager ef=200 {single_ann:,.0f}/s "
        f"({single_ann / single_exact:.1f}× exact)"
    )


def scaling(sizes: list[int], tracks: int, days: int) -> None:
    print(f"\ntraining time per generator ({tracks:,} tracks, {days} days of simulated listening)")
    names = ["popularity", "als", "rp3beta", "ease"]
    print(f"{'listeners':>10} {'nonzeros':>12} " + " ".join(f"{n:>11}" for n in names))
    for users in sizes:
        data = interactions(users, tracks, days)
        cells = []
        for name in names:
            params = {**ALS_PARAMS} if name == "als" else ({"max_items": 10_000} if name == "ease" else None)
            t0 = time.perf_counter()
            build_generator(name, params).fit(data)
            cells.append(f"{time.perf_counter() - t0:>10.1f}s")
        print(f"{users:>10,} {data.matrix.nnz:>12,} " + " ".join(cells), flush=True)
        del data


def stack(users: int, tracks: int) -> None:
    from playnext.config import Settings
    from playnext.models.training import train
    from playnext.synth.simulate import simulate

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        simulate(settings, WorldParams(users=users, tracks=tracks, days=14))
        run = train(settings)
        print(
            f"\nplaynext train, default stack, {users:,} listeners × {tracks:,} tracks, 14 days: "
            + ", ".join(f"{k} {v:.1f}s" for k, v in run.timings.items())
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--tracks", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stack", action="store_true")
    args = parser.parse_args()
    mid = sorted(args.users)[len(args.users) // 2]
    data = interactions(mid, args.tracks, args.days)
    als_overhead(data, args.repeat)
    ann_vs_exact(data)
    del data
    scaling(args.users, args.tracks, args.days)
    if args.stack:
        stack(min(args.users), min(args.tracks, 20_000))


if __name__ == "__main__":
    main()
