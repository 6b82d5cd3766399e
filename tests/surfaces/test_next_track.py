"""Next track: follows the current track's taste and never repeats what was just played."""

from __future__ import annotations

from playnext.surfaces.next_track import RECENT_HISTORY, next_tracks
from tests.surfaces.conftest import rock


def test_never_repeats_the_current_track_the_session_or_the_last_plays(version) -> None:
    data = version.data
    recent = ["t2", "t3", "t5"]
    got = next_tracks(version, "u0", "t4", recent, n=15)
    ids = [p.item_id for p in got.items]
    last = set(data.items[data.sequence(0)[-RECENT_HISTORY:]].tolist())
    assert ids and "t4" not in ids and not set(ids) & set(recent) and not set(ids) & last
    assert len(ids) == len(set(ids))


def test_follows_the_current_tracks_taste(version) -> None:
    after_jazz = next_tracks(version, "stranger", "t50", [], n=5)
    assert not after_jazz.fallback
    assert (~rock(version, [p.item_id for p in after_jazz.items])).mean() >= 0.8
    assert after_jazz.items[0].reason.startswith("goes well after")


def test_an_unknown_track_and_listener_fall_back_to_popularity(version) -> None:
    got = next_tracks(version, "stranger", "no-such-track", [], n=5)
    assert got.fallback and len(got.items) == 5
