"""Training data as of a cutoff: the pipelines' affinity over the past only, and a holdout of what came next."""

from __future__ import annotations

import datetime as dt

import numpy as np

from playnext.config import Settings
from playnext.models.data import load_holdout, load_interactions, load_reactions
from tests.pipelines.lake import T0, ev, tiny_world, write_events


def test_interactions_hold_catalog_items_and_positive_affinity(settings: Settings) -> None:
    tiny_world(settings)
    data = load_interactions(settings)
    assert sorted(data.items.tolist()) == ["e1", "t1", "t2", "t3"]
    assert data.users.tolist() == ["u1", "u2"]
    # One id's row (a request's lookup) before and after the whole index is built, and for unknown ids.
    assert data.user_row("u2") == 1 and data.item_row("nope") == -1
    u1, t1, t2 = data.user_index(["u1"])[0], data.item_index(["t1"])[0], data.item_index(["t2"])[0]
    assert (data.user_row("u1"), data.item_row("t1"), data.user_row("nope")) == (u1, t1, -1)
    assert data.matrix[u1, t1] > 0
    assert data.matrix[u1, t2] == 0  # a skip is negative affinity: not a training positive
    assert data.meta.genre[t1] == "rock" and data.meta.creator[t1] == "a1"
    # u1's liked sequence in time order: t1 (full play), t1 (save), t3; the half play is not a positive.
    names = data.items[data.sequence(u1)].tolist()
    assert names == ["t1", "t1", "t3"]


def test_a_cutoff_hides_the_future_and_the_holdout_keeps_only_new_items(settings: Settings) -> None:
    tiny_world(settings)
    write_events(settings, [
        ev("play", "late1", "u1", "t2", 3000, ms_played=100_000, reason_end="trackdone"),
        ev("play", "late2", "u1", "t1", 3001, ms_played=200_000, reason_end="trackdone"),
        ev("play", "late3", "u3", "t1", 3002, ms_played=200_000, reason_end="trackdone"),
        ev("skip", "late4", "u2", "t1", 3003, ms_played=1_000),
    ])  # fmt: skip
    cutoff = T0 + dt.timedelta(minutes=2000)
    data = load_interactions(settings, cutoff)
    assert "u3" not in data.users.tolist()
    assert data.as_of == cutoff
    u1, t2 = data.user_index(["u1"])[0], data.item_index(["t2"])[0]
    assert data.matrix[u1, t2] == 0  # the later full play of t2 is not visible before the cutoff
    holdout = load_holdout(settings, data, cutoff)
    got = {u: sorted(data.items[p].tolist()) for u, p in zip(holdout.users.tolist(), holdout.positives, strict=True)}
    # u1 re-played t1 (already met: dropped) and discovered t2; u3 is new; u2's skip is no positive.
    assert got == {"u1": ["t2"], "u3": ["t1"]}


def test_reactions_have_the_outcome_columns(settings: Settings) -> None:
    tiny_world(settings)
    table = load_reactions(settings, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=1))
    rows = {(r["user_id"], r["item_id"]): r for r in table.to_pylist()}
    assert rows[("u1", "t1")]["streamed"] and rows[("u1", "t1")]["saved"]
    assert rows[("u1", "t2")]["skipped"] and not rows[("u1", "t2")]["streamed"]
    assert rows[("u1", "t1")]["ms_played"] == 300_000
    assert not np.any([r["returned"] for r in rows.values()])


def test_followed_artists_are_signal_but_never_items(settings: Settings) -> None:
    tiny_world(settings)
    write_events(settings, [
        ev("follow", "f1", "u1", "a9", 20, item_type="artist"),
        ev("save", "f2", "u1", "a9", 21, item_type="artist"),
    ])  # fmt: skip
    data = load_interactions(settings)
    assert set(data.meta.item_type.tolist()) == {"track", "episode"}
    assert "a9" not in data.items.tolist()
    assert (data.seq_items >= 0).all() and len(data.seq_items) == data.seq_ptr[-1]


def test_played_holds_every_item_started_even_skipped_ones(settings: Settings) -> None:
    tiny_world(settings)
    data = load_interactions(settings)
    u1 = data.user_index(["u1"])[0]
    played = sorted(data.items[data.played[u1].indices].tolist())
    assert played == ["t1", "t2", "t3"]  # t2 was skipped: no affinity, but played
    assert data.matrix[u1, data.item_index(["t2"])[0]] == 0
