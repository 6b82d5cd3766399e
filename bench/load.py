"""A mixed load on a real server: ingest and every surface at once, with the server's memory watched.

    python bench/load.py [--seconds 60] [--connections 8] [--users 2000] [--tracks 5000] [--data DIR] [--workers N]
                         [--routes ROUTE …]

A world is simulated and a model trained and precomputed (reused with ``--data``), ``playnext serve`` is started,
and ``--connections`` keep-alive clients send, in random turns, event batches (20 plays, skips and saves from
random listeners) and GETs of Home, Discover Weekly, Daily Mix, next track, Blend and search. Every answer must be
a 200 (a 429, 4xx or 5xx is counted as an error); the server's resident memory is sampled every second. Prints
requests, p50/p99 latency and errors per route, the request rate, and the server's RSS at start, at its peak and
at the end (with ``--workers N``, of the supervisor and its workers together). Under a mix, a route's p99 shows
what waits behind the slow routes (Blend and search take tens of ms). ``--routes`` keeps only the routes named
(``ROUTES``), to see one route under the load of another (ingest beside Discover Weekly alone, say).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from bench.common import process_tree, request, world
from tests.e2e import Server, playnext

ROUTES = ("ingest", "home", "discover-weekly", "daily-mixes", "next", "blend", "search")


def rss_mb(pid: int) -> float:
    """Of ``pid`` and its descendants (a supervisor's workers)."""
    total = 0.0
    for process in process_tree(pid):
        with contextlib.suppress(FileNotFoundError):  # exited between two looks
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
    return total


def _events(rng: random.Random, users: int, tracks: int, n: int) -> bytes:
    now = dt.datetime.now(dt.UTC)
    out = []
    for _ in range(20):
        kind = rng.choice(["play", "play", "play", "skip", "save"])
        e = {"type": kind, "event_id": f"load-{n}-{len(out)}-{rng.getrandbits(48)}",
             "user_id": f"u{rng.randrange(users)}", "item_id": f"t{rng.randrange(tracks)}", "item_type": "track",
             "ts": (now - dt.timedelta(seconds=rng.randrange(600))).isoformat()}  # fmt: skip
        if kind == "play":
            e["ms_played"] = rng.randrange(1000, 240_000)
        out.append(e)
    return json.dumps(out).encode()


async def load(
    port: int, key: str, connections: int, seconds: float, users: int, tracks: int, routes: tuple[str, ...] = ROUTES
) -> tuple[dict[str, list[float]], Counter]:
    headers = f"Authorization: Bearer {key}\r\n"
    done: dict[str, list[float]] = {}
    errors: Counter = Counter()
    deadline = time.perf_counter() + seconds

    async def client(c: int) -> None:
        rng = random.Random(c)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        try:
            while time.perf_counter() < deadline:
                a = rng.randrange(users)
                u, t, friend = f"u{a}", f"t{rng.randrange(tracks)}", f"u{(a + 1 + rng.randrange(users - 1)) % users}"
                route, method, path, body = rng.choice([r for r in [
                    ("ingest", "POST", "/v1/events", None),
                    ("home", "GET", f"/v1/users/{u}/home", b""),
                    ("discover-weekly", "GET", f"/v1/users/{u}/discover-weekly", b""),
                    ("daily-mixes", "GET", f"/v1/users/{u}/daily-mixes", b""),
                    ("next", "GET", f"/v1/users/{u}/next?track={t}", b""),
                    ("blend", "GET", f"/v1/blend?users={u},{friend}", b""),
                    ("search", "GET", f"/v1/search?q={rng.choice(['kalo', 'mira', 'ven'])}&user={u}", b""),
                ] if r[0] in routes])  # fmt: skip
                n += 1
                payload = _events(rng, users, tracks, c * 10**9 + n) if body is None else b""
                t0 = time.perf_counter()
                status = await request(reader, writer, method, path, headers, payload)
                done.setdefault(route, []).append(time.perf_counter() - t0)
                if status != 200:
                    errors[f"{route} {status}"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(client(c) for c in range(connections)))
    return done, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--tracks", type=int, default=5000)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--workers", type=int, default=1, help="serving processes (playnext serve --workers)")
    parser.add_argument("--routes", nargs="+", choices=ROUTES, default=list(ROUTES), help="only these routes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        env = world(data, args.users, args.tracks, 7, batch=not (data / "models" / "CURRENT").exists())
        key = playnext("keys", "create", "--scope", "admin", "--rate", "0", "--quiet", env=env).stdout.strip()
        server = Server(env, "--workers", str(args.workers), timeout=900)
        try:
            samples: list[float] = [rss_mb(server.proc.pid)]
            stop = threading.Event()

            def watch() -> None:
                while not stop.wait(1.0):
                    samples.append(rss_mb(server.proc.pid))

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            started = time.perf_counter()
            done, errors = asyncio.run(
                load(server.port, key, args.connections, args.seconds, args.users, args.tracks, tuple(args.routes))
            )
            elapsed = time.perf_counter() - started
            stop.set()
            watcher.join()
            samples.append(rss_mb(server.proc.pid))
        finally:
            server.stop()
    total = sum(map(len, done.values()))
    print(f"{total:,} requests in {elapsed:.0f} s at {args.connections} connections: {total / elapsed:,.0f} req/s; "
          f"errors: {sum(errors.values())}")  # fmt: skip
    print(f"  {'route':<16} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for route, latencies in sorted(done.items()):
        p50, p99 = np.percentile(latencies, [50, 99]) * 1000
        print(f"  {route:<16} {len(latencies):>8,} {p50:>8.2f} {p99:>8.2f}")
    for what, n in errors.items():
        print(f"  error {what}: {n}")
    half = len(samples) // 2
    first, second = max(samples[:half] or samples), max(samples[half:])
    print("server RSS every 5 s (MiB): " + " ".join(f"{m:.0f}" for m in samples[::5]))
    print(f"server RSS: {samples[0]:.0f} MiB at start, peak {max(samples):.0f} MiB, {samples[-1]:.0f} MiB at the end "
          f"(peak of the first half {first:.0f} MiB, of the second {second:.0f})")  # fmt: skip
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
