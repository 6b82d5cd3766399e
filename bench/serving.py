"""Requests/s and latency of every surface, beside a bare hello-world app on the same server, in one run.

    python bench/serving.py [--users 100000] [--tracks 100000] [--days 7] [--seconds 5] [--concurrency 1 8 32]
                            [--rounds 3] [--data DIR] [--workers N] [--clients K] [--redis]
                            [--session-plays 100]

A world is simulated, a model version trained with a serving-sized stack (popularity by country, ALS, co-occurrence,
SASRec and the LightGBM ranker; content is left out and SASRec trained for one epoch of one window per listener, to keep
the training short: serving costs the same) and promoted, and ``playnext batch all`` precomputes Discover Weekly, Daily
Mix and Home's shelves for every listener; then ``uvicorn bench.serving_app:one_process_app`` (playnext's app behind a
bare hello-world app's ``GET /hello``, with ``playnext serve``'s options: ``api.app.SERVER``) serves it in one process
(``--workers N``: ``python -m bench.serving_app``, as ``playnext serve --workers N`` would, the hello-world in every
worker), and lean keep-alive clients in this process (``--clients K``: spread over K processes, for a machine with cores
to spare, where one client process would be the bottleneck) load each route for ``--seconds`` at each concurrency, with
random known listeners. Each cell is measured in ``--rounds`` rounds (3), each compared with the hello-world measured
just before and just after it (their mean), the two interleaved: hello, route, hello, route, ..., hello. The cell's
``× hello`` is the median of its rounds' ratios, and ``range`` their lowest and highest: this machine's speed drifts
within seconds, and one round's ratio moved by ±0.08 between runs of the same code. Every surface request also writes
its exposures to the durable log, as in production. The hello-world is bare: none of playnext's layers or FastAPI's
(``bench/serving_app.py``); ``app-hello``, the same answer from a route of playnext's app behind its middleware, shows
what those layers cost every request.
``--data`` keeps the world in DIR and reuses it on the next run (the simulation and training take long at full
size).

Before measuring, each benchmarked listener is given ``--session-plays`` (100, ``online.recent_plays``) recent plays
through ``POST /v1/events``, 20 of them in the current session (``fill_sessions``): the simulated world has no
live sessions, and next track reads and continues them on every request.

``--redis`` serves with the scaled-out online store (``online.backend = "redis"``): a ``redis-server`` on loopback,
sharing the machine with the server and the clients as it would share a rack, holding the world's precomputed
lists copied from its SQLite store (``playnext batch`` writes the same bytes to either store).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from bench.common import process_tree, request, world
from tests.e2e import listening_sockets, playnext
from tests.redis_server import RedisServer

from playnext.api.app import SERVER
from playnext.online.local import LocalStore
from playnext.online.redis_store import RedisStore
from playnext.surfaces.precomputed import SURFACES

ROOT = Path(__file__).resolve().parents[1]
CURRENT = 20  # of a benchmarked listener's recent plays, those in the current session (``fill_sessions``)


async def load(port: int, paths: list[str], key: str, concurrency: int, seconds: float,
               start_at: float | None = None) -> tuple[float, list[float]]:  # fmt: skip
    """``start_at``: a ``time.time()`` to begin at, so that several client processes load the server together."""
    headers = f"Authorization: Bearer {key}\r\n"
    latencies: list[float] = []
    if start_at is not None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
    deadline = time.perf_counter() + seconds

    async def client(c: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        rng = random.Random(c)
        try:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                status = await request(reader, writer, "GET", rng.choice(paths), headers)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}")
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(concurrency)))
    return len(latencies) / (time.perf_counter() - start), latencies


def _load_in_process(port: int, paths: list[str], key: str, concurrency: int, seconds: float,
                     start_at: float) -> tuple[float, list[float]]:  # fmt: skip
    return asyncio.run(load(port, paths, key, concurrency, seconds, start_at))


def spread(port: int, paths: list[str], key: str, concurrency: int, seconds: float,
           pool: ProcessPoolExecutor | None, clients: int) -> tuple[float, list[float]]:  # fmt: skip
    """``concurrency`` connections over ``clients`` processes of ``pool`` (this process without one), so that on a
    machine with cores to spare the server, not a single client process, is what the figures measure."""
    if pool is None:
        return asyncio.run(load(port, paths, key, concurrency, seconds))
    share = [concurrency // clients + (i < concurrency % clients) for i in range(clients)]
    start_at = time.time() + 0.2  # every process connected and waiting
    parts = [pool.submit(_load_in_process, port, paths, key, n, seconds, start_at) for n in share if n]
    results = [part.result() for part in parts]
    return sum(rate for rate, _ in results), [x for _, lat in results for x in lat]


def wait_until_serving(server: subprocess.Popen[bytes], port: int, workers: int) -> None:
    """Until every worker listens (each starts once it has loaded the model), not only the first to answer: the
    first cells would otherwise measure fewer workers."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if (
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
                and listening_sockets(port) >= workers
            ):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server was not serving within 15 minutes")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU these processes have used (Linux ``/proc``); a process that is gone counts 0."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def fill_sessions(port: int, key: str, users: list[str], tracks: int, plays: int) -> None:
    """Give each benchmarked listener ``plays`` recent plays through ``POST /v1/events``, as a listener who has
    been listening all day has: the newest ``CURRENT`` a minute apart up to a minute ago (the live session next
    track continues), the rest three hours earlier (recent plays it must not repeat), every fifth one a skip. The
    simulated world has no sessions of its own (only ingest writes them), and next track reads and uses them on
    every request. Event ids are new on every run, so a reused world's sessions are the current ones."""
    started, now, run = time.perf_counter(), time.time(), f"{time.time_ns():x}"
    rng, listeners = np.random.default_rng(1), list(dict.fromkeys(users))
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as client:
        for user in listeners:
            ts = [now - 60 * (i + 1) if i < CURRENT else now - 3 * 3600 - 60 * i for i in range(plays)]
            events = [
                {"type": "skip" if i % 5 == 4 else "play", "event_id": f"bench-{run}-{user}-{i}", "user_id": user,
                 "item_id": f"t{t}", "item_type": "track", "ts": dt.datetime.fromtimestamp(at, dt.UTC).isoformat(),
                 **({} if i % 5 == 4 else {"ms_played": 180_000})}
                for i, (at, t) in enumerate(zip(ts, rng.integers(0, tracks, plays).tolist(), strict=True))
            ]  # fmt: skip
            answer = client.post("/v1/events", json=events, timeout=30)
            answer.raise_for_status()
    print(f"sessions: {len(listeners)} listeners × {plays} recent plays ({min(plays, CURRENT)} in the current "
          f"session) ingested in {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip


class Cell(NamedTuple):
    rate: float  # the route's requests/s over all its rounds
    p50: float  # ms, over all its rounds' requests
    p99: float
    hello: float  # the hello-world's mean requests/s over the cell
    ratio: float  # the median of the rounds' ratios
    ratios: list[float]  # each round's: the route's rate over the mean of the hello-world's just before and after
    server_us: float  # CPU per request, over all its rounds
    client_us: float


Measure = Callable[[list[str], int], tuple[float, list[float], float, float]]


def measure_cell(name: str, paths: list[str], hello_paths: list[str], c: int, rounds: int, measure: Measure) -> Cell:
    """One cell: ``rounds`` rounds of the route, each between two of the hello-world (hello, route, hello, route,
    ..., hello), so each round's ratio has a baseline measured seconds around it. The hello-world's own cell is
    measured ``rounds`` times, its ratios 1."""
    if name == "hello-world":
        measured = [measure(paths, c) for _ in range(rounds)]
        hellos = [rate for rate, *_ in measured]
        ratios = [1.0] * rounds
    else:
        hellos = [measure(hello_paths, c)[0]]
        measured, ratios = [], []
        for _ in range(rounds):
            measured.append(measure(paths, c))
            hellos.append(measure(hello_paths, c)[0])
            ratios.append(measured[-1][0] / ((hellos[-2] + hellos[-1]) / 2))
    latencies = [x for _, lat, _, _ in measured for x in lat]
    weights = [len(lat) for _, lat, _, _ in measured]
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    return Cell(
        rate=float(np.mean([rate for rate, *_ in measured])), p50=float(p50), p99=float(p99),
        hello=float(np.mean(hellos)), ratio=float(np.median(ratios)), ratios=ratios,
        server_us=float(np.average([server for *_, server, _ in measured], weights=weights)),
        client_us=float(np.average([client for *_, client in measured], weights=weights)),
    )  # fmt: skip


def lists_in_redis(data: Path, directory: Path) -> RedisServer:
    """A ``redis-server`` on loopback holding every list of the world's embedded store."""
    started = time.perf_counter()
    server = RedisServer(directory)
    store = RedisStore(server.url, timeout_s=30)
    local = LocalStore(data / "online" / "online.sqlite3")
    try:
        copied = sum(store.put_lists(surface, local.all_lists(surface)) for surface in SURFACES)
    finally:
        local.close()
        store.close()
    print(f"online store: Redis on loopback, {copied:,} lists copied in {time.perf_counter() - started:.0f} s",
          flush=True)  # fmt: skip
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of route and hello-world per cell")
    parser.add_argument("--data", type=Path, help="keep (and reuse) the world here")
    parser.add_argument("--no-batch", action="store_true", help="reuse the lists a previous run precomputed")
    parser.add_argument("--routes", nargs="+", help="only these routes (hello-world is always measured)")
    parser.add_argument("--workers", type=int, default=1, help="serving processes (playnext serve --workers)")
    parser.add_argument("--redis", action="store_true", help="serve with the online store in Redis")
    parser.add_argument("--clients", type=int, default=1, help="client processes to spread the connections over")
    parser.add_argument("--session-plays", type=int, default=100,
                        help="recent plays ingested for each benchmarked listener first (0: none)")  # fmt: skip
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds must be at least 1 and --seconds above 0")
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        data = args.data or Path(tmp) / "data"
        env = world(data, args.users, args.tracks, args.days, batch=not args.no_batch)
        env["PLAYNEXT_COMPACT_INTERVAL_S"] = "0"
        if args.redis:
            redis_server = lists_in_redis(data, Path(tmp))
            stack.callback(redis_server.stop)
            env.update(PLAYNEXT_ONLINE__BACKEND="redis", PLAYNEXT_ONLINE__REDIS_URL=redis_server.url)
        key = playnext("keys", "create", "--scope", "read", "--scope", "ingest", "--rate", "0", "--quiet",
                       env=env).stdout.strip()  # fmt: skip
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        command = (
            ["-m", "uvicorn", "bench.serving_app:one_process_app", "--factory", "--port", str(port), "--log-level",
             "warning", "--no-access-log", "--loop", SERVER["loop"], "--http", SERVER["http"]]
            if args.workers == 1 else ["-m", "bench.serving_app", "--workers", str(args.workers), "--port", str(port)]
        )  # fmt: skip
        server = subprocess.Popen([sys.executable, *command], cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)})
        try:
            wait_until_serving(server, port, args.workers)
            rng = np.random.default_rng(0)
            users = [f"u{u}" for u in rng.integers(0, args.users, 200)]
            tracks = [f"t{t}" for t in rng.integers(0, args.tracks, 200)]
            if args.session_plays:
                fill_sessions(port, key, users, args.tracks, args.session_plays)
            routes = {
                "hello-world": ["/hello"],
                "app-hello": ["/app-hello"],
                "home": [f"/v1/users/{u}/home" for u in users],
                "next-track": [f"/v1/users/{u}/next?track={t}" for u, t in zip(users, tracks, strict=True)],
                "discover-weekly": [f"/v1/users/{u}/discover-weekly" for u in users],
                "daily-mixes": [f"/v1/users/{u}/daily-mixes" for u in users],
                "blend": [f"/v1/blend?users={a},{b}" for a, b in itertools.pairwise(users)],
                "search": [f"/v1/search?q={t}&user={u}" for u, t in zip(users, ["kalo", "ven", "mira", "tor"] * 50,
                                                                                   strict=False)],
            }  # fmt: skip
            if args.routes:
                routes = {k: v for k, v in routes.items() if k == "hello-world" or k in args.routes}
            # The precomputed cells must measure reading the store, not computing on a miss (a listener the model
            # does not know is answered ``live`` wherever the store is).
            sources = {
                httpx.get(f"http://127.0.0.1:{port}/v1/users/{user}/discover-weekly",
                          headers={"Authorization": f"Bearer {key}"}, timeout=30).json()["source"]
                for user in users[:20]
            }  # fmt: skip
            if sources - {"precomputed", "live"} or "precomputed" not in sources:
                raise SystemExit(f"Discover Weekly answered {sorted(sources)}, not from the online store: run "
                                 "without --no-batch")  # fmt: skip

            pool = stack.enter_context(ProcessPoolExecutor(args.clients)) if args.clients > 1 else None
            serving = process_tree(server.pid)

            def measure(paths: list[str], c: int) -> tuple[float, list[float], float, float]:
                """req/s, latencies, and the server's and this client process's CPU µs per request."""
                spread(port, paths, key, c, 0.5, pool, args.clients)  # warm up
                server_cpu, client_cpu = cpu_seconds(serving), time.process_time()
                rate, latencies = spread(port, paths, key, c, args.seconds, pool, args.clients)
                per = 1e6 / max(1, len(latencies))
                return (rate, latencies, (cpu_seconds(serving) - server_cpu) * per,
                        (time.process_time() - client_cpu) * per)  # fmt: skip

            # Where the two cores go: the server's CPU (every worker and the supervisor, from ``/proc`` in clock
            # ticks) and the client's (in this process, to the nanosecond: a short cell of a slow route has too few
            # requests for ticks; not counted with ``--clients``) per request. On a machine the run saturates, the
            # ratio is about the hello-world's total over the route's.
            print(f"\n{'route':<16} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'hello req/s':>12} "
                  f"{'× hello':>8} {'range':>13} {'server µs':>10} {'client µs':>10}")  # fmt: skip
            for name, paths in routes.items():
                for c in args.concurrency:
                    cell = measure_cell(name, paths, routes["hello-world"], c, args.rounds, measure)
                    client = f"{cell.client_us:>10.0f}" if pool is None else f"{'-':>10}"
                    low, high = min(cell.ratios), max(cell.ratios)
                    print(f"{name:<16} {c:>5} {cell.rate:>8,.0f} {cell.p50:>8.2f} {cell.p99:>8.2f} "
                          f"{cell.hello:>12,.0f} {cell.ratio:>8.3f} {f'{low:.3f}-{high:.3f}':>13} "
                          f"{cell.server_us:>10.0f} {client}", flush=True)  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
