"""Search over the simulated catalog: scoring the trigram index's pool against scoring every title, in one run.

    python bench/search.py [--tracks 100000] [--queries 300] [--pool 3000]

The catalog is the simulator's (every track, album, artist, show, episode and audiobook title; 131k at 100k
tracks). Queries are, for titles drawn at random: the title misspelt once (a letter replaced, dropped, added or two
swapped), its first 3-5 letters, and the bench's own short queries. Each query is answered both ways with the very
scoring ``surfaces.search`` uses (``text_matches``): all titles scored (the baseline), and the index's ``--pool``
best candidates scored. Printed: milliseconds per query each way and their ratio; for the misspelt queries, how
often the title it was made from is among the top 20 each way (what a listener typing it wants); how often the
two top-20 lists are the same; and how often both find the same close matches (scored 80 of 100 or more).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from rapidfuzz import utils

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playnext.index.trigrams import TrigramIndex
from playnext.surfaces.search import POOL, text_matches
from playnext.synth.catalog import catalog_tables
from playnext.synth.world import WorldParams, build_world


def misspelt(rng: np.random.Generator, title: str) -> str:
    letters = list(title)
    at = int(rng.integers(0, len(letters)))
    match int(rng.integers(0, 4)):
        case 0:
            letters[at] = chr(ord("a") + int(rng.integers(0, 26)))
        case 1 if len(letters) > 3:
            del letters[at]
        case 2:
            letters.insert(at, chr(ord("a") + int(rng.integers(0, 26))))
        case _ if at + 1 < len(letters):
            letters[at], letters[at + 1] = letters[at + 1], letters[at]
    return "".join(letters)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300, help="misspelt titles (and as many prefixes)")
    parser.add_argument("--pool", type=int, default=POOL)
    args = parser.parse_args()
    tables = catalog_tables(build_world(WorldParams(users=1, tracks=args.tracks, days=1)))
    names = [name for table in tables.values() for name in table["name"].to_pylist()]
    titles = np.array([utils.default_process(n) for n in names], dtype=object)
    started = time.perf_counter()
    index = TrigramIndex(titles.tolist())
    print(f"{len(titles):,} titles, {len(index.vocabulary):,} trigrams; index built in "
          f"{time.perf_counter() - started:.2f} s")  # fmt: skip

    rng = np.random.default_rng(0)
    sources = rng.integers(0, len(titles), args.queries)
    typos = [misspelt(rng, titles[i]) for i in sources]
    prefixes = [titles[i][: int(rng.integers(3, 6))] for i in rng.integers(0, len(titles), args.queries)]
    queries = typos + prefixes + ["kalo", "ven", "mira", "tor"]

    elapsed = {"all titles": 0.0, "index": 0.0}
    tops: dict[str, list[list[int]]] = {"all titles": [], "index": []}
    close: dict[str, list[dict[int, float]]] = {"all titles": [], "index": []}
    for query in queries:
        for way, used in (("all titles", None), ("index", index)):
            t0 = time.perf_counter()
            items, scores = text_matches(titles, used, query, pool=args.pool)
            elapsed[way] += time.perf_counter() - t0
            tops[way].append(items[:20].tolist())
            close[way].append(dict(zip(items[scores >= 0.8].tolist(), scores[scores >= 0.8].tolist(), strict=True)))
    full, fast = (elapsed[w] / len(queries) * 1e3 for w in ("all titles", "index"))
    print(f"{len(queries)} queries: all titles {full:.2f} ms, index (pool {args.pool:,}) {fast:.2f} ms per query: "
          f"{fast / full:.3f} × the time")  # fmt: skip
    for way in ("all titles", "index"):
        found = sum(titles[source] in {titles[i] for i in top} for source, top in zip(sources, tops[way], strict=False))
        print(f"misspelt titles found in the top 20, {way}: {found} of {len(typos)}")
    same = sum(a == b for a, b in zip(tops["all titles"], tops["index"], strict=True))
    print(f"the same top 20 both ways: {same} of {len(queries)} queries")
    same = sum(a == b for a, b in zip(close["all titles"], close["index"], strict=True))
    print(f"the same close matches (80 of 100 or more, with their scores) both ways: {same} of {len(queries)} queries")


if __name__ == "__main__":
    main()
