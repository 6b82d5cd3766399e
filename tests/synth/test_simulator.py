from __future__ import annotations

import datetime as dt

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from playnext.config import Settings
from playnext.events.schema import Event
from playnext.lake.query import connect
from playnext.synth.listening import Samplers, block_events
from playnext.synth.respond import Listeners
from playnext.synth.simulate import LakeNotEmpty, simulate
from playnext.synth.world import WorldParams, build_world, load_world

PARAMS = WorldParams(users=300, tracks=3000, days=14, seed=11, start=dt.date(2026, 10, 1))


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    return build_world(PARAMS)


@pytest.fixture(scope="module")
def history(world) -> pa.Table:  # type: ignore[no-untyped-def]
    return block_events(world, Samplers.of(world), np.arange(PARAMS.users), np.random.default_rng(3), 0)


def test_the_same_seed_gives_the_same_world_and_history(world, history) -> None:  # type: ignore[no-untyped-def]
    again = build_world(PARAMS)
    assert np.array_equal(world.user_vecs, again.user_vecs)
    events = block_events(again, Samplers.of(again), np.arange(PARAMS.users), np.random.default_rng(3), 0)
    assert events.equals(history)


def test_every_simulated_event_passes_the_ingest_schema(history: pa.Table) -> None:
    sample = history.take(np.random.default_rng(0).choice(history.num_rows, 2000, replace=False)).to_pylist()
    for row in sample:
        record = {k: v for k, v in row.items() if v is not None}
        msgspec.convert(record, Event)


def test_history_spans_the_period_with_unique_ids(history: pa.Table) -> None:
    ts = history["ts"].to_numpy()
    start = np.datetime64("2026-10-01")
    assert ts.min() >= start and ts.max() < start + np.timedelta64(15, "D")
    assert len(set(history["event_id"].to_pylist())) == history.num_rows


def test_listeners_play_their_own_taste_far_above_chance(world, history) -> None:  # type: ignore[no-untyped-def]
    plays = history.filter(pa.compute.equal(history["type"], "play"))
    plays = plays.filter(pa.compute.equal(plays["item_type"], "track"))
    users = np.array([int(u[1:]) for u in plays["user_id"].to_pylist()])
    tracks = np.array([int(t[1:]) for t in plays["item_id"].to_pylist()])
    # Favourite artists: 5 of hundreds, yet a large share of what each listener plays.
    from_favourites = (world.user_favourites[users] == world.track_artist[tracks][:, None]).any(axis=1)
    chance = world.user_favourites.shape[1] / len(world.artist_genre)
    assert from_favourites.mean() > 10 * chance
    # Played tracks sit closer to the listener's hidden taste than to a random other listener's.
    own = np.einsum("ij,ij->i", world.user_vecs[users], world.track_vecs[tracks])
    other = np.einsum(
        "ij,ij->i", world.user_vecs[np.random.default_rng(0).permutation(users)], world.track_vecs[tracks]
    )
    assert own.mean() > other.mean() + 0.2


def test_skips_follow_the_hidden_affinity(world, history) -> None:  # type: ignore[no-untyped-def]
    music = history.filter(pa.compute.is_in(history["type"], pa.array(["play", "skip"])))
    music = music.filter(pa.compute.equal(music["item_type"], "track"))
    users = np.array([int(u[1:]) for u in music["user_id"].to_pylist()])
    tracks = np.array([int(t[1:]) for t in music["item_id"].to_pylist()])
    skipped = np.array(music["type"].to_pylist()) == "skip"
    affinity = world.affinity(users, tracks)
    low, high = affinity < np.quantile(affinity, 0.25), affinity > np.quantile(affinity, 0.75)
    assert skipped[low].mean() > skipped[high].mean() + 0.2


def test_responses_to_served_lists_favour_good_recommendations(world) -> None:  # type: ignore[no-untyped-def]
    listeners = Listeners(world, seed=1)
    users = np.repeat(np.arange(PARAMS.users), 20)
    random_tracks = np.random.default_rng(2).integers(0, PARAMS.tracks, len(users))
    scores = world.user_vecs @ world.track_vecs.T
    best = np.argsort(-scores, axis=1)[:, :20].ravel()
    positions = np.tile(np.arange(20), PARAMS.users)
    good = listeners.respond(users, best, positions)
    bad = listeners.respond(users, random_tracks, positions)
    assert good.streamed.mean() > bad.streamed.mean() + 0.05
    assert good.examined[positions == 0].mean() > good.examined[positions == 19].mean()


def test_respond_events_are_valid_events_for_the_collector(world) -> None:  # type: ignore[no-untyped-def]
    events = Listeners(world, seed=4).respond_events(
        "u3", ["t1", "t2", "nope"], request_id="r9", surface="home", at=dt.datetime(2026, 10, 20, tzinfo=dt.UTC)
    )
    impressions = [e for e in events if type(e).__name__ == "Impression"]
    assert [e.position for e in impressions] == [0, 1, 2]
    assert all(e.request_id == "r9" for e in events)
    assert len({e.event_id for e in events}) == len(events)


def test_simulate_writes_lake_catalog_and_truth_and_refuses_to_overwrite(settings: Settings) -> None:
    small = WorldParams(users=50, tracks=400, days=3, seed=5, start=dt.date(2026, 11, 1))
    result = simulate(settings, small)
    con = connect(settings)
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == result.events > 0
    assert con.execute("SELECT count(*) FROM tracks").fetchone()[0] == 400
    unknown = con.execute(
        "SELECT count(*) FROM events e LEFT JOIN tracks t ON e.item_id = t.id "
        "WHERE e.item_type = 'track' AND t.id IS NULL"
    ).fetchone()[0]
    assert unknown == 0
    assert np.array_equal(load_world(settings.synth_dir).user_vecs, build_world(small).user_vecs)
    with pytest.raises(LakeNotEmpty):
        simulate(settings, small)
    again = simulate(settings, small, replace=True)
    assert connect(settings).execute("SELECT count(*) FROM events").fetchone()[0] == again.events
