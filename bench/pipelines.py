"""Feature tables through playnext (Ibis on DuckDB) vs hand-written DuckDB SQL of the same transform, same run.

    python bench/pipelines.py [--events 1m 10m] [--spark]

For each size a world is simulated (with closed-loop impressions so that ``outcomes`` has work), then each table
is built (1) by ``playnext pipeline run --full`` on DuckDB and (2) by a hand-written SQL statement copied to
Parquet by DuckDB itself, over the same files, interleaved ``--repeat`` times, the best run of each counting. Row counts must agree, so the baseline does the same work. With
``--spark`` the 1M world is also built on Spark ``local[*]``. Ratios are comparable across machines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import msgspec
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playnext.catalog.store import catalog_table
from playnext.config import Settings
from playnext.events.lake_events import events_table, write_event_partitions
from playnext.events.schema import ARROW_SCHEMA
from playnext.pipelines.runner import feature_table, run_pipeline
from playnext.pipelines.tables import TABLES
from playnext.synth.respond import Listeners
from playnext.synth.simulate import simulate
from playnext.synth.world import WorldParams, load_world

SIZES = {"1m": (2_400, 20_000), "10m": (24_000, 100_000)}  # users, tracks over 28 days
DAYS = 28

# Parts the hand-written statements share: the session numbering, and the aggregates of both stats tables.
NUMBERED = """l AS (
          SELECT *, floor(epoch(ts)) AS s, floor(epoch(ts)) + coalesce(ms_played,0) / 1000.0 AS end_s
          FROM events WHERE type IN ('play','skip')),
        g AS (SELECT *, CASE WHEN s - lag(end_s) OVER w > 1800 OR lag(end_s) OVER w IS NULL THEN 1 ELSE 0 END AS new
              FROM l WINDOW w AS (PARTITION BY user_id ORDER BY ts, event_id)),
        n AS (SELECT *, sum(new) OVER (PARTITION BY user_id ORDER BY ts, event_id ROWS UNBOUNDED PRECEDING) AS no FROM g)"""
STATS = """count(*) FILTER (type='play') AS plays, count(*) FILTER (type='skip') AS skips,
          count(*) FILTER (type='play' AND coalesce(ms_played,0) >= 30000) AS streams,
          count(*) FILTER (type='save') AS saves, count(DISTINCT user_id) FILTER (type IN ('play','skip')) AS listeners,
          avg(least(coalesce(ms_played,0) / coalesce(duration_ms,180000)::DOUBLE, 1.0)) FILTER (type='play') AS completion_rate,
          sum(coalesce(ms_played,0))::BIGINT AS ms_played,
          count(*) FILTER (type='play' AND age < 604800) AS plays_recent,
          count(*) FILTER (type='play' AND age >= 604800 AND age < 1209600) AS plays_before"""

# The same transforms, written by hand for DuckDB. {p} holds the pipeline parameters, {as_of} the reference time.
HAND_SQL = {
    "user_item_affinity": """
        WITH e AS (
          SELECT e.*, i.duration_ms FROM events e LEFT JOIN items i ON e.item_id = i.id AND e.item_type = i.item_type
          WHERE e.type IN ('play','skip','save','unsave','playlist_add','follow'))
        SELECT user_id, item_id, item_type,
          sum(CASE type WHEN 'play' THEN 0.5 + 1.0 * least(coalesce(ms_played,0) / coalesce(duration_ms,180000)::DOUBLE, 1.0)
                        WHEN 'skip' THEN -0.5 WHEN 'save' THEN 2.0 WHEN 'unsave' THEN -2.0
                        WHEN 'playlist_add' THEN 1.5 WHEN 'follow' THEN 2.0 ELSE 0 END
              * exp(-ln(2) * ({as_of} - floor(epoch(ts))) / 86400.0 / 30.0)) AS affinity,
          count(*) FILTER (type = 'play') AS plays, count(*) FILTER (type = 'skip') AS skips,
          count(*) FILTER (type = 'save') - count(*) FILTER (type = 'unsave') AS saves,
          count(*) FILTER (type = 'playlist_add') AS playlist_adds, sum(coalesce(ms_played,0))::BIGINT AS ms_played,
          max(ts) AS last_ts
        FROM e GROUP BY ALL""",
    "sessions": """
        WITH {numbered}
        SELECT user_id || '-' || CAST(min(s) AS BIGINT) AS session_id, user_id, min(ts) AS start,
          max(end_s) - min(s) AS duration_s, count(*) AS items, count(*) FILTER (type='skip') AS skips,
          count(*) FILTER (type='skip') / count(*)::DOUBLE AS skip_rate, sum(coalesce(ms_played,0))::BIGINT AS ms_played,
          CASE WHEN count(*) FILTER (item_type='track') = count(*) THEN 'music'
               WHEN count(*) FILTER (item_type='episode') = count(*) THEN 'podcast'
               WHEN count(*) FILTER (item_type='audiobook') = count(*) THEN 'audiobook' ELSE 'mixed' END AS content_type
        FROM n GROUP BY user_id, no""",
    "item_cooccurrence": """
        WITH {numbered},
        seq AS (
          SELECT user_id || ':' || no AS seq_id, item_id,
                 row_number() OVER (PARTITION BY user_id, no ORDER BY ts, event_id) AS pos FROM n WHERE type = 'play'
          UNION ALL
          SELECT 'playlist:' || user_id || ':' || playlist_id, item_id,
                 row_number() OVER (PARTITION BY user_id, playlist_id ORDER BY ts, event_id)
          FROM events WHERE type = 'playlist_add'),
        fwd AS (SELECT x.item_id AS a, y.item_id AS b FROM seq x JOIN seq y
                ON x.seq_id = y.seq_id AND y.pos > x.pos AND y.pos - x.pos <= 5 AND x.item_id <> y.item_id),
        pairs AS (SELECT a, b FROM fwd UNION ALL SELECT b, a FROM fwd),
        c AS (SELECT a, b, count(*) AS cnt FROM pairs GROUP BY ALL),
        t AS (SELECT a, sum(cnt) AS n FROM c GROUP BY a),
        s AS (SELECT c.*, c.cnt * (SELECT sum(cnt) FROM c)::DOUBLE / (ta.n * tb.n) AS lift
              FROM c JOIN t ta ON c.a = ta.a JOIN t tb ON c.b = tb.a WHERE c.cnt >= 2),
        r AS (SELECT *, row_number() OVER (PARTITION BY a ORDER BY ln(lift) DESC, cnt DESC, b) AS rk FROM s)
        SELECT a AS item_id, b AS neighbour_id, cnt AS count, lift, ln(lift) AS pmi, rk AS rank FROM r WHERE rk <= 50""",
    "item_stats": """
        WITH e AS (SELECT e.*, i.duration_ms, {as_of} - floor(epoch(ts)) AS age FROM events e
                   LEFT JOIN items i ON e.item_id = i.id AND e.item_type = i.item_type
                   WHERE e.type IN ('play','skip','save') AND e.item_id IS NOT NULL)
        SELECT item_id, item_type, {stats}
        FROM e GROUP BY ALL""",
    "artist_stats": """
        WITH e AS (SELECT e.*, i.duration_ms, i.creator_id, {as_of} - floor(epoch(ts)) AS age FROM events e
                   JOIN items i ON e.item_id = i.id AND e.item_type = i.item_type
                   WHERE e.type IN ('play','skip','save') AND e.item_type = 'track' AND i.creator_id IS NOT NULL)
        SELECT creator_id AS artist_id, {stats}
        FROM e GROUP BY ALL""",
    "user_profile": """
        WITH e AS (SELECT e.user_id, coalesce(e.ms_played,0) AS ms, e.item_type, i.creator_id, i.genres, hour(e.ts) AS hour
                   FROM events e LEFT JOIN items i ON e.item_id = i.id AND e.item_type = i.item_type
                   WHERE e.type IN ('play','skip')),
        f AS (
          SELECT user_id, 'genre' AS facet, unnest(genres) AS key, ms / len(genres)::DOUBLE AS ms FROM e WHERE len(genres) > 0
          UNION ALL SELECT user_id, 'artist', creator_id, ms FROM e WHERE item_type = 'track' AND creator_id IS NOT NULL
          UNION ALL SELECT user_id, 'content_type', item_type, ms FROM e
          UNION ALL SELECT user_id, 'hour', CAST(hour AS VARCHAR), ms FROM e),
        k AS (SELECT user_id, facet, key, sum(ms) AS ms FROM f GROUP BY ALL)
        SELECT user_id, facet, key, ms / sum(ms) OVER (PARTITION BY user_id, facet) AS share, ms AS ms_played
        FROM k QUALIFY sum(ms) OVER (PARTITION BY user_id, facet) > 0""",
    "outcomes": """
        WITH imp AS (SELECT event_id AS impression_id, user_id, item_id, ts, surface, position, request_id, variant,
                            propensity, floor(epoch(ts)) AS s FROM events WHERE type = 'impression'),
        acts AS (SELECT user_id, item_id, type, coalesce(ms_played,0) AS ms, floor(epoch(ts)) AS s FROM events
                 WHERE type IN ('play','skip','save')),
        plays AS (SELECT user_id, floor(epoch(ts)) AS s FROM events WHERE type = 'play'),
        r AS (SELECT imp.*, max(CASE WHEN a.type='play' AND a.ms >= 30000 THEN 1 ELSE 0 END) AS st,
                     max(CASE WHEN a.type='save' THEN 1 ELSE 0 END) AS sv, max(CASE WHEN a.type='skip' THEN 1 ELSE 0 END) AS sk,
                     sum(CASE WHEN a.type='play' THEN a.ms ELSE 0 END) AS ms
              FROM imp LEFT JOIN acts a ON a.user_id = imp.user_id AND a.item_id = imp.item_id
                   AND a.s >= imp.s AND a.s <= imp.s + 86400 GROUP BY ALL)
        SELECT impression_id, r.user_id, item_id, ts, surface, position, request_id, variant, propensity,
               coalesce(st,0) = 1 AS streamed, coalesce(sv,0) = 1 AS saved, coalesce(sk,0) = 1 AS skipped,
               max(CASE WHEN p.s IS NOT NULL THEN 1 ELSE 0 END) = 1 AS returned, coalesce(r.ms,0)::BIGINT AS ms_played,
               r.s + 7 * 86400 <= {as_of} AS complete
        FROM r LEFT JOIN plays p ON p.user_id = r.user_id AND p.s > r.s + 86400 AND p.s <= r.s + 7 * 86400
        GROUP BY ALL""",
}


def world(root: Path, users: int, tracks: int) -> Settings:
    settings = Settings(data_dir=root / "data")
    simulate(settings, WorldParams(users=users, tracks=tracks, days=DAYS, seed=3, start=dt.date(2026, 10, 1)))
    listeners = Listeners(load_world(settings.synth_dir), seed=1)
    rng = np.random.default_rng(0)
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    rows = []
    for k in range(users):  # one served list of 10 per listener, somewhere in the period
        at = start + dt.timedelta(minutes=int(rng.integers(0, DAYS * 1440)))
        items = [f"t{i}" for i in rng.integers(0, tracks, 10)]
        for e in listeners.respond_events(f"u{k}", items, request_id=f"b{k}", surface="home", at=at):
            row = msgspec.to_builtins(e)
            row["ts"] = e.ts
            rows.append(row)
    lake = events_table(settings.lake_dir)
    lake.commit(add=write_event_partitions(lake, pa.Table.from_pylist(rows, schema=ARROW_SCHEMA), tag="served"))
    return settings


def hand_written(settings: Settings, name: str, as_of: float, out: Path) -> tuple[float, int]:
    con = duckdb.connect()
    files = [str(p) for p in events_table(settings.lake_dir).file_paths()]
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet({files})")
    parts = []
    for kind, creator in (("tracks", "artist_id"), ("episodes", "show_id"), ("audiobooks", "author")):
        paths = [str(p) for p in catalog_table(settings.catalog_dir, kind).file_paths()]
        item_type = kind[:-1]
        parts.append(
            f"SELECT id, '{item_type}' AS item_type, duration_ms, {creator} AS creator_id, genres FROM read_parquet({paths})"
        )
    con.execute("CREATE VIEW items AS " + " UNION ALL ".join(parts))
    sql = HAND_SQL[name].format(as_of=as_of, numbered=NUMBERED, stats=STATS)
    t0 = time.perf_counter()
    con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
    seconds = time.perf_counter() - t0
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    return seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", nargs="+", default=["1m", "10m"], choices=sorted(SIZES))
    parser.add_argument("--spark", action="store_true", help="also time Spark local[*] on the 1M world")
    parser.add_argument("--repeat", type=int, default=2, help="runs per side; the best counts (noisy machines)")
    args = parser.parse_args()
    for size in args.events:
        with tempfile.TemporaryDirectory(prefix="playnext-bench-") as tmp:
            root = Path(tmp)
            settings = world(root, *SIZES[size])
            n_events = events_table(settings.lake_dir).manifest().rows
            print(f"\n{size}: {n_events:,} events")
            print(f"{'table':<20} {'rows':>11} {'playnext s':>11} {'hand SQL s':>11} {'ratio':>7}" + (
                f" {'spark s':>9}" if args.spark and size == "1m" else ""))  # fmt: skip
            as_of = None
            spark = {}
            if args.spark and size == "1m":
                for run in run_pipeline(settings, engine="spark", full=True):
                    spark[run.name] = run.seconds
            for name in TABLES:
                # Interleaved and best-of-N, so that neither side always runs on a colder machine.
                ours, hand = None, None
                for _ in range(args.repeat):
                    run = run_pipeline(settings, tables=[name], full=True)[0]
                    ours = run if ours is None or run.seconds < ours.seconds else ours
                    if as_of is None:
                        meta = feature_table(settings, name).manifest().meta
                        as_of = dt.datetime.fromisoformat(meta["as_of"]).timestamp()
                    timing = hand_written(settings, name, as_of, root / f"{name}.parquet")
                    hand = timing if hand is None or timing[0] < hand[0] else hand
                seconds, rows = hand
                assert rows == ours.rows, f"{name}: hand SQL gave {rows} rows, playnext {ours.rows}"
                line = (
                    f"{name:<20} {ours.rows:>11,} {ours.seconds:>11.2f} {seconds:>11.2f} {ours.seconds / seconds:>7.2f}"
                )
                if name in spark:
                    line += f" {spark[name]:>9.2f}"
                print(line, flush=True)
    print("\nratio = playnext (Ibis on DuckDB, through the pipeline runner) / hand-written DuckDB SQL, same files")


if __name__ == "__main__":
    main()
