"""Next track's quality against its cost: how often it proposes what listeners really played next, per search setting.

    python bench/next_track.py --data DIR [--users 20000] [--tracks 20000] [--days 7] [--holdout 0.2] [--cases 2000]

The served model version must have been trained at a cutoff (``playnext train --holdout``); a world made here is
simulated and trained that way, with ``bench/serving.py``'s stack (SASRec cut to one epoch), 20k listeners and
tracks by default: over the 20,000 items at which SASRec's continuations come from a voyager index, so the search
settings matter. The cases are the listeners' completed
plays after the cutoff: one transition per listener, drawn at random, where the previous play is the current
track, the plays before it in the same session (no gap over ``online.session_gap_s``) are the recent ones, and the
next play is the target. Targets next track can never propose are left out and counted: a repeat of the session
or of the listener's last plays, an item of another type, or one the model does not know.

Each setting of SASRec's search (``surfaces.next_track.Search``) answers every case with the rest of the surface
as served, the settings taking turns case by case. The table gives hit@20 (the target among the 20), MRR@20, the
share of its top 20 that exact search also gives, and its time per call as a ratio to the served setting's, all in
the same run. Δ hit@20 is paired with the served setting on the same cases, with a 95% interval.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import GENERATORS, PARAMS
from tests.e2e import env_for, playnext

from playnext.config import Settings, load_settings
from playnext.models.registry import ModelVersion, Registry
from playnext.surfaces.next_track import RECENT_HISTORY, Search, next_tracks, served

N = 20


def holdout_world(data: Path, users: int, tracks: int, days: int, holdout: float) -> None:
    """Simulate and train at a cutoff, unless ``data`` has a model already."""
    if (data / "models" / "CURRENT").exists():
        return
    env = env_for(data, models__generators=GENERATORS, models__params=PARAMS)
    t0 = time.perf_counter()
    playnext("simulate", "--users", str(users), "--tracks", str(tracks), "--days", str(days), env=env, timeout=3600)
    playnext("train", "--holdout", str(holdout), "--promote", env=env, timeout=7200)
    print(f"simulated and trained in {time.perf_counter() - t0:.0f} s", flush=True)


def later_plays(settings: Settings, cutoff: dt.datetime) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(listener, item, seconds) of every completed play from ``cutoff`` on, by listener and time: the same
    completion threshold that makes a play a positive for training."""
    import ibis

    from playnext.pipelines.engine import DuckDBEngine
    from playnext.pipelines.inputs import load_inputs
    from playnext.pipelines.tables.common import completion, with_items

    with DuckDBEngine() as engine:
        inputs = load_inputs(engine, settings)
        e = inputs.events
        plays = with_items(inputs, e.filter((e.type == "play") & (e.ts >= ibis.literal(cutoff))), "duration_ms")
        plays = plays.filter(completion(plays) >= settings.models.positive_completion)
        table = plays.select("user_id", "item_id", "ts_s").order_by(["user_id", "ts_s", "item_id"]).to_pyarrow()
    return (np.asarray(table["user_id"].to_numpy(zero_copy_only=False), dtype=object),
            np.asarray(table["item_id"].to_numpy(zero_copy_only=False), dtype=object),
            table["ts_s"].to_numpy())  # fmt: skip


def transitions(users: np.ndarray, ts: np.ndarray, gap_s: float, cases: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(target row, first row of its session) for one random transition per listener, at most ``cases`` of them;
    rows sorted by listener and time. A transition's current track is the row before its target."""
    new_session = np.ones(len(users), bool)
    new_session[1:] = (users[1:] != users[:-1]) | (ts[1:] - ts[:-1] > gap_s)
    starts = np.maximum.accumulate(np.where(new_session, np.arange(len(users)), 0))
    targets = np.flatnonzero(~new_session)  # the row before is in the same session
    targets = targets[rng.permutation(len(targets))]
    _, first = np.unique(users[targets], return_index=True)  # the first of each listener's shuffled transitions
    chosen = targets[first]
    chosen = np.sort(chosen[rng.permutation(len(chosen))[:cases]])
    return chosen, starts[chosen]


def cases_of(version: ModelVersion, users: np.ndarray, items: np.ndarray, chosen: np.ndarray,
             starts: np.ndarray) -> tuple[list[tuple[str, str, list[str], str]], dict[str, int]]:  # fmt: skip
    """(listener, current, recent, target) for the transitions next track could answer, and why the others were
    left out."""
    data, out = version.data, []
    left_out = {"repeat": 0, "other type": 0, "unknown item": 0}
    kinds = data.meta.item_type
    for target, start in zip(chosen.tolist(), starts.tolist(), strict=True):
        user, current, goal = users[target], items[target - 1], items[target]
        recent = items[start : target - 1].tolist()
        cur, row, want = data.item_row(current), data.user_row(user), data.item_row(goal)
        if cur < 0 or want < 0:
            left_out["unknown item"] += 1
            continue
        history = data.sequence(row)[-RECENT_HISTORY:] if row >= 0 else np.zeros(0, np.int64)
        if goal == current or goal in recent or want in history:
            left_out["repeat"] += 1
            continue
        if kinds[cur] != kinds[want]:
            left_out["other type"] += 1
            continue
        out.append((user, current, recent, goal))
    return out, left_out


def answer(version: ModelVersion, cases: list[tuple[str, str, list[str], str]],
           searches: dict[str, Search]) -> dict[str, tuple[list[list[str]], float]]:  # fmt: skip
    """Every case's top ``N`` under each search, and its seconds per call. The searches take turns case by case,
    so a drift of the machine's speed weighs on all of them alike, and each goes first equally often: the first
    answer to a case meets its listener's data cold in the caches, and the others find it warm."""
    names = list(searches)
    lists: dict[str, list[list[str] | None]] = {name: [None] * len(cases) for name in names}
    seconds = dict.fromkeys(names, 0.0)
    for i, (user, current, recent, _) in enumerate(cases):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            t0 = time.perf_counter()
            shown = next_tracks(version, user, current, recent, n=N, search=searches[name])
            seconds[name] += time.perf_counter() - t0
            lists[name][i] = [p.item_id for p in shown.items]
    return {name: (lists[name], seconds[name] / max(len(cases), 1)) for name in names}  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the world (made here when it has no model)")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--tracks", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--holdout", type=float, default=0.2, help="share of the newest events held out")
    parser.add_argument("--cases", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    holdout_world(args.data, args.users, args.tracks, args.days, args.holdout)
    settings = load_settings(data_dir=args.data)
    registry = Registry(settings)
    version = registry.load(registry.current_id() or "")
    if not version.manifest.get("cutoff"):
        raise SystemExit(f"model version {version.id} was trained on every event: train one with --holdout")
    # The id maps, built now rather than in a timed call.
    version.data.user_index([])
    version.data.item_index([])
    cutoff = dt.datetime.fromisoformat(version.manifest["cutoff"])
    users, items, ts = later_plays(settings, cutoff)
    chosen, starts = transitions(users, ts, settings.online.session_gap_s, args.cases, np.random.default_rng(args.seed))
    cases, left_out = cases_of(version, users, items, chosen, starts)
    if not cases:
        raise SystemExit("no listener played two items in a session after the cutoff")
    print(f"model version {version.id}, cutoff {cutoff:%Y-%m-%d %H:%M}; {len(cases):,} cases from {len(users):,} "
          f"completed plays after it; left out: " + ", ".join(f"{k} {v}" for k, v in left_out.items()))  # fmt: skip

    base = served(version)
    served_name, exact_name = f"served (k {base.k}, ef {base.ef})", f"exact (k {base.k})"
    searches = {served_name: base}
    if base.ef is not None:
        searches |= {"ef 200": Search(base.k, 200), "k 50, ef 50": Search(50, 50), "k 150, ef 150": Search(150, 150)}
    searches[exact_name] = Search(base.k, None)
    answered = answer(version, cases, searches)
    targets = [goal for *_, goal in cases]
    exact = answered[exact_name][0]
    served_lists, served_s = answered[served_name]
    served_hits = np.array([t in got for t, got in zip(targets, served_lists, strict=True)])
    print(f"\n{'setting':<24} {'hit@20':>7} {'MRR@20':>7} {'Δ hit@20 vs served [95%]':>26} {'as exact':>9} "
          f"{'µs/call':>8} {'× served':>9}")  # fmt: skip
    for name, (lists, seconds) in answered.items():
        hits = np.array([t in got for t, got in zip(targets, lists, strict=True)])
        rr = np.array([1.0 / (got.index(t) + 1) if t in got else 0.0 for t, got in zip(targets, lists, strict=True)])
        diff = hits.astype(float) - served_hits
        half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        same = np.mean([len(set(a) & set(b)) / max(len(b), 1) for a, b in zip(lists, exact, strict=True)])
        print(f"{name:<24} {hits.mean():>7.3f} {rr.mean():>7.3f} {f'{diff.mean():+.3f} ± {half:.3f}':>26} "
              f"{same:>9.3f} {seconds * 1e6:>8,.0f} {seconds / served_s:>9.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
