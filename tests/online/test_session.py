"""The live session: only newly stored plays and skips feed it; a long gap starts a new one."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from pathlib import Path

from playnext.events.schema import Play as PlayEvent
from playnext.events.schema import Save, Skip
from playnext.online.local import LocalStore
from playnext.online.session import SessionFeed, current_session, plays_of
from playnext.online.store import Play, StoreUnavailable

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _event(kind: type, n: int, item: str):  # type: ignore[no-untyped-def]
    extra = {"ms_played": 200_000} if kind is PlayEvent else {}
    return kind(event_id=f"e{n}", user_id="u", ts=T0 + dt.timedelta(minutes=n), item_id=item, item_type="track",
                **extra)  # fmt: skip


def test_only_new_plays_and_skips_feed_the_session() -> None:
    events = [_event(PlayEvent, 0, "a"), _event(Skip, 1, "b"), _event(Save, 2, "c"), _event(PlayEvent, 3, "d")]
    got = plays_of(events, [True, True, True, False])  # the last one was a duplicate of a stored event
    assert [(p.item_id, p.skipped) for p in got] == [("a", False), ("b", True)]
    assert got[0].ts == T0.timestamp()


def test_a_gap_longer_than_the_limit_starts_a_new_session() -> None:
    plays = [Play("u", i, ts) for i, ts in [("a", 0.0), ("b", 100.0), ("c", 5000.0), ("d", 5100.0)]]
    assert [p.item_id for p in current_session(plays, 1800, now=5200.0)] == ["c", "d"]
    assert current_session(plays, 1800, now=5100.0 + 1801) == []  # the listener has stopped listening
    assert [p.item_id for p in current_session(plays, 10_000, now=5200.0)] == ["a", "b", "c", "d"]
    assert current_session([], 1800, now=0.0) == []


class _CountingStore(LocalStore):
    """The real SQLite store, counting its writes and able to hold the first one until released."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[int] = []
        self.hold = threading.Event()
        self.hold.set()
        self.fail_next = False

    def add_plays(self, plays, select=None) -> None:  # type: ignore[no-untyped-def]
        self.hold.wait(10)
        if self.fail_next:
            self.fail_next = False
            raise StoreUnavailable("the store went away")
        self.writes.append(len(select(list(plays)) if select else plays))
        super().add_plays(plays, select)


def test_the_feed_writes_behind_the_answer_and_coalesces_what_arrives_meanwhile(tmp_path: Path) -> None:
    async def scenario() -> None:
        store, errors = _CountingStore(tmp_path / "o.sqlite3"), []
        feed = SessionFeed(store, lambda plays: [p for p in plays if p.user_id != "forgotten"], errors.append)
        store.hold.clear()  # the first write is under way and slow
        feed.add([Play("u1", "a", 1.0)])
        await asyncio.sleep(0.05)
        for n in range(5):  # these arrive meanwhile: one write for all of them
            feed.add([Play("u1", f"b{n}", 2.0 + n), Play("forgotten", "x", 2.0)])
        store.hold.set()
        await feed.settled()
        assert store.writes == [1, 5]  # the forgotten listener's plays were dropped
        assert [p.item_id for p in store.recent_plays("u1", 10)] == ["a", "b0", "b1", "b2", "b3", "b4"]
        assert store.recent_plays("forgotten", 10) == []
        store.fail_next = True
        feed.add([Play("u2", "lost", 9.0)])
        await feed.settled()
        feed.add([Play("u2", "kept", 10.0)])
        await feed.settled()
        assert [str(e) for e in errors] == ["the store went away"]  # counted, and the next batch still lands
        assert [p.item_id for p in store.recent_plays("u2", 10)] == ["kept"]
        await feed.settled()  # nothing pending: returns at once

    asyncio.run(scenario())
