"""A user's first hour: simulate, import, serve, ingest, compact, query; all through the CLI and HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import msgspec
import pytest

from tests.conftest import event
from tests.e2e import Server, env_for, playnext

pytestmark = pytest.mark.slow


def test_simulate_serve_ingest_compact_and_query(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data")
    sim = playnext("simulate", "--users", "40", "--tracks", "300", "--days", "3", "--start", "2026-11-01", env=env)
    assert "40 listeners" in sim.stdout
    key = playnext("keys", "create", "--scope", "ingest", "--quiet", env=env).stdout.strip()

    server = Server(env)
    try:
        headers = {"Authorization": f"Bearer {key}"}
        batch = [event(event_id=f"live-{i}", ts="2026-11-04T12:00:00Z") for i in range(25)]
        r = httpx.post(f"{server.url}/v1/events", json=[*batch, batch[0]], headers=headers)
        assert r.status_code == 200 and r.json()["accepted"] == 25 and r.json()["duplicates"] == 1
        assert httpx.post(f"{server.url}/v1/events", json=batch).json()["error"] == "unauthorized"
        assert "paths" in httpx.get(f"{server.url}/openapi.json").json()
        # The log belongs to the server while it runs: a local import says so; an import --url goes through it.
        history = tmp_path / "history.csv"
        history.write_text(
            "type,event_id,user_id,ts,item_id,item_type,ms_played\n"
            "play,csv-1,u9,2026-11-04T13:00:00Z,t3,track,1200\n"
            "play,live-0,u9,2026-11-04T13:00:00Z,t3,track,1200\n"
            "play,csv-2,u9,2026-11-04T13:00:00Z,t3,track,minus one\n"
        )
        locked = playnext("events", "import", str(history), env=env, check=False)
        assert locked.returncode == 2 and "in use by process" in locked.stderr and "--url" in locked.stderr
        remote = playnext("events", "import", str(history), "--url", server.url, "--key", key, env=env, check=False)
        assert remote.returncode == 1 and f"{history}:4:" in remote.stderr
        assert "1 events stored, 1 duplicates" in remote.stdout
        wrong_key = playnext(
            "events", "import", str(history), "--url", server.url, "--key", "pn_x_y", env=env, check=False
        )
        assert wrong_key.returncode == 2 and "401" in wrong_key.stderr
    finally:
        server.stop()

    compacted = playnext("events", "compact", env=env)
    assert "26 events" in compacted.stdout
    rows = json.loads(
        playnext(
            "sql", "SELECT count(*) AS n FROM events WHERE event_id LIKE 'live-%'", "--format", "json", env=env
        ).stdout
    )
    assert rows == [{"n": 25}]
    csv_out = playnext("sql", "SELECT count(*) AS n FROM tracks", "--format", "csv", env=env).stdout
    assert csv_out.splitlines() == ['"n"', "300"]


def test_import_reports_bad_lines_with_file_and_line_and_keeps_the_good(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data")
    path = tmp_path / "history.ndjson"
    path.write_bytes(
        msgspec.json.encode(event(event_id="ok-1"))
        + b"\n{oops\n"
        + msgspec.json.encode(event(event_id="ok-2"))
        + b"\n"
        + msgspec.json.encode(event(event_id="bad", item_type="video"))
        + b"\n"
    )
    result = playnext("events", "import", str(path), env=env, check=False)
    assert result.returncode == 1
    assert f"{path}:2:" in result.stderr and f"{path}:4:" in result.stderr
    assert "2 events stored" in result.stdout
    again = playnext("events", "import", str(path), env=env, check=False)
    assert "0 events stored, 2 duplicates" in again.stdout
    playnext("events", "compact", env=env)
    ids = json.loads(playnext("sql", "SELECT event_id FROM events ORDER BY 1", "--format", "json", env=env).stdout)
    assert ids == [{"event_id": "ok-1"}, {"event_id": "ok-2"}]


def test_catalog_import_and_clear_cli_errors(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data")
    tracks = tmp_path / "tracks.csv"
    tracks.write_text("id,name,artist_id,duration_ms\nt1,One,a1,200000\nt2,Two,a1,zero\n")
    result = playnext("catalog", "import", str(tracks), env=env, check=False)
    assert result.returncode == 1 and f"{tracks}:3:" in result.stderr
    assert "1 tracks imported" in result.stdout
    bad_sql = playnext("sql", "SELECT nope FROM tracks", env=env, check=False)
    assert bad_sql.returncode == 2 and "nope" in bad_sql.stderr and "Traceback" not in bad_sql.stderr
    missing = playnext("events", "import", str(tmp_path / "missing.csv"), env=env, check=False)
    assert missing.returncode == 2 and "missing.csv: no such file" in missing.stderr


def test_every_command_has_help() -> None:
    from typer.main import get_command
    from typer.testing import CliRunner

    from playnext.cli import app

    root = get_command(app)
    paths: list[list[str]] = [[]]
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        paths.append([name])
        paths += [[name, sub] for sub in getattr(command, "commands", {})]
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output
    assert len(paths) >= 12


def test_the_server_compacts_served_events_into_the_lake_by_itself(tmp_path: Path) -> None:
    import time

    env = env_for(tmp_path / "data", segment_max_age_s="0.5", compact_interval_s="0.5")
    key = playnext("keys", "create", "--scope", "ingest", "--quiet", env=env).stdout.strip()
    server = Server(env)
    try:
        batch = [event(event_id=f"auto-{i}", ts="2026-11-04T12:00:00Z") for i in range(10)]
        assert httpx.post(f"{server.url}/v1/events", json=batch, headers={"Authorization": f"Bearer {key}"}).is_success
        deadline = time.monotonic() + 20
        count = 0
        while time.monotonic() < deadline and count < 10:
            time.sleep(0.5)
            result = playnext("sql", "SELECT count(*) AS n FROM events", "--format", "json", env=env)
            count = json.loads(result.stdout)[0]["n"]
        assert count == 10
    finally:
        server.stop()
