"""SIGKILL at random moments: every acknowledged event survives exactly once, and compaction never loses or doubles.

These are the promises of the log and the lake, checked the way they break in production: a process killed
mid-write, restarted, and killed again.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from playnext.events.log import EventLog
from tests.conftest import event
from tests.e2e import Server, env_for, lake_event_ids, playnext
from tests.events.helpers import events

pytestmark = pytest.mark.slow
KILLS = 20


def test_sigkill_during_ingest_loses_and_doubles_no_acknowledged_event(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data", segment_max_bytes="65536")
    key = playnext("keys", "create", "--scope", "ingest", "-q", env=env).stdout.strip()
    headers = {"Authorization": f"Bearer {key}"}
    acked: set[str] = set()
    lock = threading.Lock()
    rng = random.Random(42)

    for round_ in range(KILLS):
        server = Server(env)
        stop = threading.Event()

        def client(c: int, url: str = server.url, round_: int = round_, stop: threading.Event = stop) -> None:
            with httpx.Client(timeout=5) as http:
                k = 0
                while not stop.is_set():
                    batch = [event(event_id=f"r{round_}-c{c}-{k}-{i}") for i in range(rng.choice((1, 20, 100)))]
                    with lock:
                        retries = rng.sample(sorted(acked), min(5, len(acked)))
                    batch += [event(event_id=i) for i in retries]  # clients retry: must stay single
                    k += 1
                    try:
                        r = http.post(f"{url}/v1/events", json=batch, headers=headers)
                    except httpx.TransportError:
                        return
                    if r.status_code == 200:
                        body = r.json()
                        with lock:
                            acked.update(body["accepted_ids"])
                            acked.update(body["duplicate_ids"])

        threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.05, 0.6))
        server.kill()
        stop.set()
        for t in threads:
            t.join(timeout=10)

    assert len(acked) > 1000, "the clients should have been acknowledged plenty before the kills"
    playnext("events", "compact", env=env)
    stored = Counter(lake_event_ids(tmp_path / "data" / "lake"))
    doubled = [i for i, n in stored.items() if n > 1]
    lost = acked - set(stored)
    assert not doubled, f"{len(doubled)} events stored twice, e.g. {doubled[:5]}"
    assert not lost, f"{len(lost)} acknowledged events lost, e.g. {sorted(lost)[:5]}"


def test_sigkill_during_compaction_loses_and_doubles_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = env_for(data, compact_commit_bytes="40000")
    written: list[str] = []

    def fill(round_: int) -> None:
        """More sealed segments spread over a week, so each compaction run has many commits to be killed in."""
        with EventLog(data / "log", segment_max_bytes=16_384) as log:
            for b in range(60):
                batch = events(100, prefix=f"r{round_}-b{b}-", ts=f"2026-11-{10 + b % 7}T08:00:00Z")
                log.append(batch)
                written.extend(e.event_id for e in batch)

    rng = random.Random(7)
    kills = 0
    fill(0)
    for attempt in range(1, 200):
        proc = subprocess.Popen(
            [sys.executable, "-m", "playnext.cli", "events", "compact"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            proc.wait(timeout=rng.uniform(0.3, 1.2))
            fill(attempt)  # it finished: give the next run work to be killed in
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            # Between kills, readers must see a consistent table: never a doubled event.
            ids = lake_event_ids(data / "lake")
            assert len(ids) == len(set(ids))
        if kills >= KILLS:
            break
    assert kills >= KILLS
    playnext("events", "compact", env=env)
    stored = Counter(lake_event_ids(data / "lake"))
    assert sorted(stored) == sorted(written)
    assert max(stored.values()) == 1
