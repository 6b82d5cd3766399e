"""The live session: only newly stored plays and skips feed it; a long gap starts a new one."""

from __future__ import annotations

import datetime as dt

from playnext.events.schema import Play as PlayEvent
from playnext.events.schema import Save, Skip
from playnext.online.session import current_session, plays_of
from playnext.online.store import Play

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
