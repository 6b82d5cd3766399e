"""Forgetting a listener: after the request nothing of them remains anywhere playnext keeps data, and neither a
retried upload, a replayed export nor a later compaction brings their past back."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import msgspec
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from playnext.api.app import create_app
from playnext.api.keys import KeyStore
from playnext.config import Settings
from playnext.events import framing
from playnext.events.log import event_log_for
from playnext.events.schema import Event
from playnext.models.registry import Registry
from playnext.privacy.tombstones import PLACEHOLDER_PREFIX, Tombstones, digest
from tests.e2e import env_for, playnext

pytestmark = pytest.mark.slow

TARGET, OTHER = "u7", "u8"


def _traces(settings: Settings, user: str) -> list[str]:
    """Every place under the data directory that still names ``user``, checked by what each file holds."""
    found = []
    quoted = f'"{user}"'.encode()
    for path in sorted(p for p in settings.data_dir.rglob("*") if p.is_file()):
        rel = str(path.relative_to(settings.data_dir))
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            for column in ("user_id", "id"):
                if column in table.column_names and user in set(table[column].to_pylist()):
                    found.append(f"{rel}: {column}")
        elif path.suffix == ".sqlite3":
            db = sqlite3.connect(path)
            n = sum(db.execute(f"SELECT count(*) FROM {t} WHERE user_id = ?", (user,)).fetchone()[0]
                    for t in ("lists", "recent"))  # fmt: skip
            db.close()
            if n or user.encode() + b"\x00" in path.read_bytes():
                found.append(rel)
        elif path.suffix == ".sqlite3-wal" and user.encode() + b"\x00" in path.read_bytes():
            found.append(rel)  # the pages as they were before a delete, until a checkpoint truncates the log
        elif path.name.startswith("segment-") and path.suffix == ".log":
            if any(quoted in f.payload for f in framing.scan(path).frames):
                found.append(rel)
        elif path.suffix in (".json", ".ndjson", ".log", ".txt") and quoted in path.read_bytes():
            found.append(rel)
    return found


def test_a_forgotten_listener_leaves_no_trace_and_cannot_come_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = env_for(data, compact_interval_s="0")
    playnext("simulate", "--users", "60", "--tracks", "300", "--days", "7", env=env)
    playnext("pipeline", "run", env=env, timeout=300)
    playnext("train", "--generators", "popularity,als,cooccurrence", "--promote", env=env, timeout=300)
    playnext("batch", "all", env=env, timeout=300)
    settings = Settings(data_dir=data, compact_interval_s=0)
    assert _traces(settings, TARGET)  # the world really holds the listener everywhere to begin with
    _, admin = KeyStore(settings.keys_file).create(["admin"])
    auth = {"Authorization": f"Bearer {admin}"}
    now = dt.datetime.now(dt.UTC)
    recent = [{"type": "play", "event_id": f"late-{i}", "user_id": u, "item_id": "t3", "item_type": "track",
               "ts": (now - dt.timedelta(minutes=i)).isoformat(), "ms_played": 90_000}
              for i, u in enumerate([TARGET, OTHER, TARGET])]  # fmt: skip
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/events", json=recent, headers=auth).json()["accepted"] == 3  # in the log only
        assert client.get(f"/v1/users/{TARGET}/discover-weekly", headers=auth).json()["source"] == "precomputed"
        assert client.delete(f"/v1/users/{TARGET}", headers={"Authorization": "Bearer nope"}).status_code == 401
        _, reader = KeyStore(settings.keys_file).create(["read"])
        assert client.delete(f"/v1/users/{TARGET}", headers={"Authorization": f"Bearer {reader}"}).status_code == 403
        got = client.delete(f"/v1/users/{TARGET}", headers=auth)
        assert got.status_code == 200, got.text
        report = got.json()
        assert report["lake_rows"]["events"] > 0 and report["lake_rows"]["user_item_affinity"] > 0
        assert report["model_versions"] == [Registry(settings).current_id()]
        # The server forgets what it holds in memory too, and keeps serving the scrubbed version.
        assert TARGET not in set(client.app.state.model.version.data.users.tolist())
        assert _traces(settings, TARGET) == []  # nothing, anywhere
        assert client.get(f"/v1/users/{TARGET}/discover-weekly", headers=auth).json()["source"] == "live"
        assert client.get(f"/v1/users/{OTHER}/home", headers=auth).status_code == 200
        # A retried upload of the listener's past is refused, event by event; others' events still go in.
        again = client.post("/v1/events", json=[{**recent[0], "event_id": "retry"}, {**recent[1], "event_id": "x"}],
                            headers=auth).json()  # fmt: skip
        assert again["accepted"] == 1 and again["rejections"][0]["index"] == 0
        assert "deleted on request" in again["rejections"][0]["reason"]
        later = {**recent[0], "event_id": "came-back", "ts": (dt.datetime.now(dt.UTC)).isoformat()}
        assert client.post("/v1/events", json=[later], headers=auth).json()["accepted"] == 1  # new data is new
        client.portal.call(client.app.state.session_feed.settled)  # sessions are written behind the answer
        assert [p.item_id for p in client.app.state.store.recent_plays(TARGET, 10)] == ["t3"]
        assert client.delete("/v1/users/" + "x" * 200, headers=auth).status_code == 422
    assert Registry(settings).verify(Registry(settings).current_id())["scrubbed"]
    version = Registry(settings).load(Registry(settings).current_id())
    assert TARGET not in set(version.data.users.tolist()) and OTHER in set(version.data.users.tolist())
    gone = [i for i, u in enumerate(version.data.users.tolist()) if u.startswith(PLACEHOLDER_PREFIX)]
    assert len(gone) == 1 and version.data.matrix[gone[0]].nnz == 0 and len(version.data.sequence(gone[0])) == 0
    als = version.recommender.generators["als"]
    assert not als.user_factors_[gone[0]].any() and als.user_factors_[gone[0] - 1].any()
    assert f"{digest(TARGET)}" in Tombstones(settings.tombstones_file).forgotten_at()
    assert TARGET.encode() not in settings.tombstones_file.read_bytes()
    # A replayed export of their past is refused by the importer, line by line…
    export = tmp_path / "export.ndjson"
    export.write_text("\n".join(json.dumps({**e, "event_id": f"replay-{n}"}) for n, e in enumerate(recent)))
    imported = playnext("events", "import", str(export), env=env, check=False)
    assert imported.returncode == 1 and "1 events stored" in imported.stdout
    assert "export.ndjson:1: the listener's data was deleted on request" in imported.stdout + imported.stderr
    # …and what a process that never heard of the deletion wrote straight into the log is dropped at compaction.
    with event_log_for(settings) as unaware:
        unaware.append([msgspec.convert({**recent[0], "event_id": "unaware"}, Event)])
    playnext("events", "compact", env=env)
    lake = pq.read_table(data / "lake" / "events", columns=["user_id", "event_id"]).to_pylist()
    theirs = {r["event_id"] for r in lake if r["user_id"] == TARGET}  # what they did after: new data
    assert "came-back" in theirs and not theirs & {"unaware", "replay-0", "replay-2", "retry", "late-0", "late-2"}


def test_the_cli_forgets_when_no_server_runs_and_defers_to_one_that_does(tmp_path: Path) -> None:
    from tests.e2e import Server

    data = tmp_path / "data"
    env = env_for(data, compact_interval_s="0")
    playnext("simulate", "--users", "30", "--tracks", "200", "--days", "3", env=env)
    done = playnext("users", "forget", TARGET, env=env)
    assert f"forgot {TARGET}" in done.stdout and "events" in done.stdout
    assert not _traces(Settings(data_dir=data), TARGET)
    server = Server(env)
    try:
        busy = playnext("users", "forget", OTHER, env=env, check=False)
        assert busy.returncode == 1 and "DELETE /v1/users/{id}" in busy.stderr
    finally:
        server.stop()
    bad = playnext("users", "forget", "a\x07b", env=env, check=False)
    assert bad.returncode == 2 and "not a listener id" in bad.stderr
