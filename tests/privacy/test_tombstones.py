"""Tombstones: digests only, a time per listener that only moves forward, and refusals named per event."""

from __future__ import annotations

from pathlib import Path

from playnext.online.store import Play
from playnext.privacy.tombstones import REFUSAL, Tombstones, refuse_forgotten
from tests.conftest import event, utc


def test_a_listener_who_asks_again_is_buried_up_to_the_newest_request(tmp_path: Path) -> None:
    stones = Tombstones(tmp_path / "tombstones.json")
    assert stones.add("alice", at=100.0) == 100.0
    assert stones.buried("alice", 100.0) and not stones.buried("alice", 150.0) and not stones.buried("bob", 1.0)
    assert stones.add("alice", at=200.0) == 200.0  # came back, asked again
    assert stones.buried("alice", 150.0)
    assert stones.add("alice", at=50.0) == 200.0  # an older, replayed request never moves it back
    assert b"alice" not in (tmp_path / "tombstones.json").read_bytes()


def test_listeners_forgotten_since_a_model_version_was_made(tmp_path: Path) -> None:
    stones = Tombstones(tmp_path / "tombstones.json")
    assert stones.forgotten_since(["alice"], 0.0) == set()  # no tombstone at all: nothing to look up
    stones.add("alice", at=100.0)
    stones.add("bob", at=50.0)
    assert stones.forgotten_since(["alice", "bob", "carol"], 60.0) == {"alice"}  # bob: before the version
    assert stones.forgotten_since(["alice", "bob"], 100.0) == {"alice"}
    assert stones.forgotten_since(["alice", "bob"], 100.5) == set()  # a version made after both requests
    plays = [Play("alice", "t", 99.0), Play("alice", "t", 101.0), Play("bob", "t", 50.0), Play("carol", "t", 1.0)]
    assert stones.unburied(plays) == plays[1:2] + plays[3:]  # up to and at each request: their deleted past


def test_refusals_name_each_buried_event_and_keep_the_rest(tmp_path: Path) -> None:
    import msgspec

    from playnext.events.schema import Event

    stones = Tombstones(tmp_path / "tombstones.json")
    events = [msgspec.convert(event(user_id=u, ts="2026-11-20T10:00:00Z"), Event) for u in ("a", "b", "a")]
    assert refuse_forgotten(events, [0, 1, 2], stones) == (events, [0, 1, 2], [])  # free when nobody is buried
    stones.add("a", at=utc(2026, 11, 21).timestamp())
    kept, where, refused = refuse_forgotten(events, [0, 1, 2], stones)
    assert [e.user_id for e in kept] == ["b"] and where == [1]
    assert [(r.index, r.reason) for r in refused] == [(0, REFUSAL), (2, REFUSAL)]
