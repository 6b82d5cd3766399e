"""Small, readable worlds on temporary directories; nothing here touches the user's data or environment."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from playnext.config import Settings

_ids = itertools.count()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("PLAYNEXT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def event(kind: str = "play", **fields: Any) -> dict[str, Any]:
    """A valid event of type ``kind`` as a client would send it; ``fields`` override or add."""
    base: dict[str, Any] = {
        "type": kind,
        "event_id": f"e{next(_ids)}",
        "user_id": "u1",
        "ts": "2026-11-20T10:00:00Z",
        "item_id": "t1",
        "item_type": "track",
    }
    extra = {
        "play": {"ms_played": 180_000, "reason_end": "trackdone"},
        "playlist_add": {"playlist_id": "pl1"},
        "search": {"query": "abba"},
        "impression": {"surface": "home", "position": 0, "request_id": "r1", "variant": "control", "propensity": 0.5},
    }.get(kind, {})
    return {**base, **extra, **fields}


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.fixture
def redis_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real redis-server on a free loopback port, killed after the test."""
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path)
    yield server
    server.stop()
