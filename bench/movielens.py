"""MovieLens-100K, global temporal split, full ranking: playnext's stack against tuned baselines.

    python bench/movielens.py [--k 20] [--holdout 0.2]

The newest ``--holdout`` share of ratings (by time, across all users) is the test period; positives are ratings
of 4 or more (full plays, see ``playnext.datasets.movielens``) of movies the listener had not rated before.
Every item is ranked and seen items are excluded. Baselines are tuned on a validation split carved from the
training period the same way (its newest 20 %), then refitted on the whole training period. Listeners without
training history get popularity from every model, so the comparison is decided by the listeners a model can
personalise for; the table reports both. playnext's ranker uses the tuned generators as candidates and features.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playnext.config import Settings
from playnext.datasets.movielens import import_movielens
from playnext.evaluation.offline import evaluate, evaluate_stack, with_cold_start
from playnext.models.data import events_quantile, load_holdout, load_interactions
from playnext.models.generators import build_generator
from playnext.models.training import train

GRIDS = {
    "als": [
        {"factors": f, "regularization": r, "alpha": a, "iterations": 15}
        for f, r, a in itertools.product((32, 64, 128), (0.01, 0.1, 1.0), (1.0, 5.0, 20.0))
    ],
    "ease": [{"l2": v} for v in (10.0, 50.0, 100.0, 300.0, 1000.0, 3000.0)],
    "rp3beta": [{"alpha": a, "beta": b} for a, b in itertools.product((0.5, 1.0), (0.0, 0.2, 0.4, 0.6))],
    "popularity": [{}],
    "trending": [{"smoothing": s} for s in (1.0, 10.0, 100.0)],
}


def tune(settings: Settings, cutoff, k: int) -> dict[str, dict]:
    """Best parameters per baseline by NDCG@k on the validation split (the newest 20 % before ``cutoff``)."""
    val_cut = events_quantile(settings, 0.8, before=cutoff)
    data = load_interactions(settings, val_cut)
    holdout = load_holdout(settings, data, val_cut, end=cutoff)
    fallback = build_generator("popularity").fit(data)
    best = {}
    for name, grid in GRIDS.items():
        scored = []
        for params in grid:
            model = build_generator(name, params).fit(data)
            scored.append(
                (evaluate(name, with_cold_start(model, fallback), data, holdout, k).row()[f"ndcg@{k}"], params)
            )
        score, params = max(scored, key=lambda t: t[0])
        best[name] = params
        print(f"  {name:<11} validation ndcg@{k} {score:.4f} with {params}", flush=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--holdout", type=float, default=0.2)
    args = parser.parse_args()
    k = args.k
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        import_movielens(settings)
        cutoff = events_quantile(settings, 1.0 - args.holdout)
        print(f"test period from {cutoff:%Y-%m-%d %H:%M} (newest {args.holdout:.0%} of events); tuning on validation:")
        best = tune(settings, cutoff, k)
        generators = ["popularity", "trending", "als", "ease", "rp3beta"]
        tuned = settings.model_copy(
            update={
                "models": settings.models.model_copy(
                    update={"generators": generators, "params": {n: best[n] for n in generators}}
                )
            }
        )
        run = train(tuned, cutoff)
        holdout = load_holdout(settings, run.data, cutoff)
        reports = evaluate_stack(run.recommender, run.data, holdout, k)
        blend = train(tuned.model_copy(update={"models": tuned.models.model_copy(update={"ranker": False})}), cutoff)
        reports.insert(1, evaluate_stack(blend.recommender, blend.data, holdout, k, generators=False)[0])
        reports[0].name, reports[1].name = "playnext ranker", "playnext blend (no ranker)"
        users = reports[0].users
        print(
            f"\ntest: {users['all']} listeners with positives ({users['new']} new, {users['light']} light, "
            f"{users['heavy']} heavy); ranker trained on {run.ranker_info['queries']} queries "
            f"({run.ranker_info['source']})"
        )
        print(
            f"{'model':<28} {'ndcg@' + str(k):>8} {'recall@' + str(k):>9} {'ndcg known':>11} {'coverage':>9} "
            f"{'diversity':>9} {'novelty':>8}"
        )
        for r in reports:
            m, known_n = r.row(), users["light"] + users["heavy"]
            known = sum(r.metrics[s][f"ndcg@{k}"] * users[s] for s in ("light", "heavy") if s in r.metrics) / known_n
            print(
                f"{r.name:<28} {m[f'ndcg@{k}']:>8.4f} {m[f'recall@{k}']:>9.4f} {known:>11.4f} "
                f"{m['coverage']:>9.3f} {m['diversity']:>9.3f} {m['novelty']:>8.2f}"
            )


if __name__ == "__main__":
    main()
