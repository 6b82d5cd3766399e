"""``playnext serve --workers 2`` as an operator runs it: both workers answer, ingest's dedup and the exposure log
hold across them, /metrics counts every worker's requests, a listener is forgotten through either, and the
workers never outlive their supervisor."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from playnext.api.observability import FLUSH_S
from playnext.config import Settings
from playnext.lake.query import connect
from playnext.online.local import LocalStore
from playnext.surfaces.precomputed import SURFACES
from tests.conftest import event
from tests.e2e import Server, env_for, free_port, lake_event_ids, listening_sockets, playnext

pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in found]


def _metric(text: str, pattern: str) -> float:
    return sum(float(v) for v in re.findall("^" + pattern + r" (\S+)$", text, re.MULTILINE))


def test_two_workers_share_one_log_one_dedup_and_one_set_of_metrics(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = env_for(data, compact_interval_s="0.5", segment_max_age_s="0.5")
    playnext("simulate", "--users", "120", "--tracks", "300", "--days", "7", env=env)
    playnext("train", "--generators", "popularity,popularity_country,als", "--promote", env=env, timeout=300)
    playnext("batch", "discover-weekly", env=env, timeout=300)
    key = playnext("keys", "create", "--scope", "admin", "--quiet", env=env).stdout.strip()
    auth = {"Authorization": f"Bearer {key}"}
    server = Server(env, "--workers", "2")
    try:
        # New connections, eight at a time, until both workers have answered: a request id starts with its
        # process's own random prefix (``playnext.ids``).
        request_ids: list[str] = []

        def discover(user: int) -> str:
            got = httpx.get(f"{server.url}/v1/users/u{user}/discover-weekly", headers=auth, timeout=30)
            assert got.status_code == 200 and got.json()["source"] == "precomputed", got.text
            return got.json()["request_id"]

        with ThreadPoolExecutor(8) as pool:
            for _ in range(20):
                request_ids += pool.map(discover, range(40))
                if len({r[:16] for r in request_ids}) == 2:
                    break
        assert len({r[:16] for r in request_ids}) == 2, "one worker answered every request"

        # The same batch through fresh connections: stored once, whichever worker takes it.
        batch = [event(event_id=f"w-{i}", user_id="u3" if i % 2 else "u5") for i in range(20)]
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: httpx.post(f"{server.url}/v1/events", json=batch, headers=auth,
                                                         timeout=30).json(), range(8)))  # fmt: skip
        assert sorted(a["accepted"] for a in answers) == [0] * 7 + [20]
        assert sum(a["duplicates"] for a in answers) == 7 * 20

        # Each worker hands its tallied counts over every FLUSH_S: the other worker's reach a scrape by then.
        answers = r'playnext_surface_answers_total\{source="precomputed",surface="discover-weekly"\}'
        deadline = time.monotonic() + 20 * FLUSH_S
        while _metric(text := httpx.get(f"{server.url}/metrics", timeout=30).text, answers) < len(request_ids):
            assert time.monotonic() < deadline, "a worker's counts never reached the scrape"
            time.sleep(FLUSH_S / 5)
        assert _metric(text, answers) == len(request_ids)
        assert _metric(text, r'playnext_ingest_events_total\{outcome="accepted"\}') == 20
        assert _metric(text, r'playnext_ingest_events_total\{outcome="duplicate"\}') == 140
        assert _metric(text, r"playnext_log_healthy") == 1

        # The supervisor compacts the one log: every answer's impressions and each event once reach the lake.
        settings = Settings(data_dir=data)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shown = {row[0] for row in connect(settings).execute(
                "SELECT DISTINCT request_id FROM events WHERE type = 'impression'").fetchall()}  # fmt: skip
            if set(request_ids) <= shown and all(f"w-{i}" in lake_event_ids(settings.lake_dir) for i in range(20)):
                break
            time.sleep(0.5)
        assert set(request_ids) <= shown
        stored = lake_event_ids(settings.lake_dir)
        assert sorted(i for i in stored if i.startswith("w-")) == sorted(f"w-{i}" for i in range(20))

        forgotten = httpx.delete(f"{server.url}/v1/users/u3", headers=auth, timeout=120)
        assert forgotten.status_code == 200, forgotten.text
        assert connect(settings).execute("SELECT count(*) FROM events WHERE user_id = 'u3'").fetchone() == (0,)
        assert connect(settings).execute("SELECT count(*) FROM events WHERE user_id = 'u5'").fetchone()[0] >= 10

        # Every worker, not only the one that forgot them, loads the scrubbed model version again: u3 is then a
        # stranger to both (cold start: ``live``), and neither writes lists of theirs back from its memory.
        def after_forget(_: int) -> tuple[str, str]:
            got = httpx.get(f"{server.url}/v1/users/u3/discover-weekly", headers=auth, timeout=30).json()
            return got["request_id"][:16], got["source"]

        answered: dict[str, str] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (len(answered) == 2 and set(answered.values()) == {"live"}):
            with ThreadPoolExecutor(8) as pool:
                answered.update(pool.map(after_forget, range(8)))
            time.sleep(0.2)
        assert len(answered) == 2 and set(answered.values()) == {"live"}, answered
        online = sqlite3.connect(data / "online" / "online.sqlite3")
        assert online.execute("SELECT count(*) FROM lists WHERE user_id = 'u3'").fetchone() == (0,)
        online.close()
        local = LocalStore(data / "online" / "online.sqlite3")  # nor in the batch's snapshots
        assert [s for s in SURFACES if local.get_list(s, "u3") is not None] == []
        local.close()
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.proc.stderr.read().decode() if server.proc.stderr else ""
    assert playnext("events", "compact", env=env).returncode == 0  # the log is free again

    # Killed outright, the supervisor takes its workers with it: they stop, and the port is free.
    server = Server(env, "--workers", "2")
    workers = _children(server.proc.pid)
    assert workers
    server.kill()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{w}") and _alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)
    assert listening_sockets(server.port) == 0
    with socket.socket() as s:  # SO_REUSEADDR: a connection in TIME_WAIT is not a worker still listening
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", server.port))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_workers_must_be_at_least_one(tmp_path: Path) -> None:
    got = playnext("serve", "--workers", "0", env=env_for(tmp_path / "data"), check=False)
    assert got.returncode == 2 and "--workers" in got.stderr


def test_a_second_supervisor_is_refused_with_the_reason(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data")
    first = Server(env, "--workers", "2")
    try:
        # The same data directory: its log has a writer already, named by pid.
        second = playnext("serve", "--workers", "2", "--port", str(free_port()), env=env, check=False, timeout=60)
        assert second.returncode == 2 and f"in use by process {first.proc.pid}" in second.stderr, second.stderr
        # Another data directory, the same port: refused before any worker starts.
        other = env_for(tmp_path / "other")
        third = playnext("serve", "--workers", "2", "--port", str(first.port), env=other, check=False, timeout=60)
        assert third.returncode == 2 and f"cannot listen on 127.0.0.1:{first.port}" in third.stderr, third.stderr
        assert httpx.get(f"{first.url}/healthz", timeout=10).status_code == 200
    finally:
        first.stop()


def test_workers_that_cannot_start_stop_the_server_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playnext.api import workers
    from playnext.events.log import EventLog

    monkeypatch.setattr(workers, "EARLY_DEATHS", 2)
    monkeypatch.setattr(workers, "RESTART_DELAY_S", 0.1)
    settings = Settings(data_dir=tmp_path / "data", workers=2, port=free_port())
    with pytest.raises(workers.WorkersFailing, match="died 2 times in a row"):
        workers.serve_workers(settings, app="no_such_module:app")
    with EventLog(settings.log_dir):  # the log was closed and its lock released
        pass
