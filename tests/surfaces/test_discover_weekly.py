"""Discover Weekly: never played, at most two per artist, the same all week and new the next."""

from __future__ import annotations

import datetime as dt

from playnext.surfaces.discover_weekly import discover_weekly
from tests.surfaces.conftest import rock

MONDAY = dt.date(2026, 11, 23)


def test_only_tracks_never_played_skips_included(version) -> None:
    data = version.data
    got = discover_weekly(version, "u0", MONDAY, n=6)  # u0 has 14 rock tracks left to discover
    ids = [p.item_id for p in got.items]
    played = set(data.items[data.played[0].indices].tolist())
    assert ids and not set(ids) & played
    assert "t1" not in ids  # skipped, not liked: still played
    assert not got.fallback and all(p.reason.startswith("because you played") for p in got.items)
    assert rock(version, ids).mean() > 0.8  # listener 0 likes rock


def test_at_most_two_tracks_per_artist(version) -> None:
    got = discover_weekly(version, "u3", MONDAY, n=30, per_artist=2)
    creators = version.data.meta.creator[version.data.item_index([p.item_id for p in got.items])]
    _, counts = __import__("numpy").unique(creators, return_counts=True)
    assert counts.max() <= 2


def test_stable_within_the_iso_week_and_new_the_next(version) -> None:
    week = [discover_weekly(version, "u5", MONDAY + dt.timedelta(days=d), n=8).items for d in range(7)]
    assert all(items == week[0] for items in week)
    following = discover_weekly(version, "u5", MONDAY + dt.timedelta(days=7), n=8).items
    assert [p.item_id for p in following] != [p.item_id for p in week[0]]


def test_an_unknown_listener_gets_popular_tracks(version) -> None:
    got = discover_weekly(version, "stranger", MONDAY, n=10)
    assert got.fallback and len(got.items) == 10
    assert all(p.item_type == "track" for p in got.items)
