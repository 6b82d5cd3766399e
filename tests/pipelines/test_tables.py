"""Each feature table on a lake small enough to compute by hand (see ``tiny_world``); DuckDB engine."""

from __future__ import annotations

import math

import pytest

from playnext.config import PipelineSettings, Settings
from playnext.pipelines.runner import feature_table, run_pipeline
from tests.pipelines.lake import tiny_world


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("tiny") / "data",
        pipelines=PipelineSettings(cooccurrence_min_count=1),
    )
    tiny_world(settings)
    run_pipeline(settings)
    return settings


def rows(settings: Settings, name: str, *keys: str) -> dict:
    table = feature_table(settings, name).read()
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in table.to_pylist()}


def decay(minute: float, as_of: float = 600.0, half_life_days: float = 30.0) -> float:
    return 2 ** (-((as_of - minute) / 1440.0) / half_life_days)


def test_affinity_weighs_completion_saves_skips_and_recency(built: Settings) -> None:
    got = rows(built, "user_item_affinity", "user_id", "item_id")
    assert set(got) == {("u1", "t1"), ("u1", "t2"), ("u1", "t3"), ("u2", "t2"), ("u2", "t3"), ("u2", "e1")}
    assert got["u1", "t1"]["affinity"] == pytest.approx(1.5 * decay(0) + 1.0 * decay(5) + 2.0 * decay(6))
    assert (got["u1", "t1"]["plays"], got["u1", "t1"]["saves"]) == (2, 1)
    assert got["u1", "t2"]["affinity"] == pytest.approx(-0.5 * decay(4))
    assert got["u2", "t3"]["affinity"] == pytest.approx(1.5 * decay(4) + 1.5 * decay(9))
    assert got["u2", "t3"]["playlist_adds"] == 1
    assert got["u2", "e1"]["affinity"] == pytest.approx(1.0)  # half an episode, at the reference time
    assert got["u2", "e1"]["item_type"] == "episode"


def test_sessions_split_on_a_pause_measured_from_the_end_of_the_last_item(built: Settings) -> None:
    got = sorted(feature_table(built, "sessions").read().to_pylist(), key=lambda r: (r["user_id"], r["start"]))
    assert [(r["user_id"], r["items"], r["skips"], r["content_type"]) for r in got] == [
        ("u1", 3, 1, "music"),
        ("u1", 1, 0, "music"),
        ("u2", 2, 0, "music"),
        ("u2", 1, 0, "podcast"),
    ]
    assert got[0]["skip_rate"] == pytest.approx(1 / 3)
    assert got[0]["ms_played"] == 305_000
    assert got[0]["duration_s"] == pytest.approx(5 * 60 + 100)  # from 10:00 to the end of p2 (10:05 + 100 s)
    assert len({r["session_id"] for r in got}) == 4


def test_cooccurrence_counts_pairs_in_sessions_with_lift_and_pmi(built: Settings) -> None:
    got = rows(built, "item_cooccurrence", "item_id", "neighbour_id")
    assert set(got) == {("t2", "t3"), ("t3", "t2")}  # t1 with itself is no pair; skips are not plays
    pair = got["t2", "t3"]
    assert (pair["count"], pair["rank"]) == (1, 1)
    assert pair["lift"] == pytest.approx(2.0) and pair["pmi"] == pytest.approx(math.log(2.0))


def test_item_stats_count_plays_skips_streams_listeners_and_completion(built: Settings) -> None:
    got = rows(built, "item_stats", "item_id")
    t1, t2, e1 = got["t1"], got["t2"], got["e1"]
    assert (t1["plays"], t1["skips"], t1["streams"], t1["saves"], t1["listeners"]) == (2, 0, 2, 1, 1)
    assert t1["completion_rate"] == pytest.approx(0.75)
    assert t1["trend"] == pytest.approx(3.0)  # (2 recent + 1) / (0 before + 1)
    assert (t2["plays"], t2["skips"], t2["listeners"]) == (1, 1, 2) and t2["skip_rate"] == pytest.approx(0.5)
    assert e1["item_type"] == "episode" and e1["completion_rate"] == pytest.approx(0.5)


def test_artist_stats_roll_up_tracks(built: Settings) -> None:
    got = rows(built, "artist_stats", "artist_id")
    assert (got["a1"]["plays"], got["a1"]["skips"], got["a1"]["listeners"]) == (3, 1, 2)
    assert got["a1"]["completion_rate"] == pytest.approx((1.0 + 0.5 + 1.0) / 3)
    assert got["a2"]["plays"] == 2


def test_user_profile_shares_listening_time(built: Settings) -> None:
    got = rows(built, "user_profile", "user_id", "facet", "key")
    assert got["u1", "genre", "rock"]["share"] == pytest.approx(302_500 / 545_000)  # t2's time split over 2 genres
    assert got["u1", "genre", "indie"]["share"] == pytest.approx(2_500 / 545_000)
    assert got["u1", "artist", "a1"]["share"] == pytest.approx(305_000 / 545_000)
    assert got["u1", "hour", "12"]["share"] == pytest.approx(240_000 / 545_000)
    assert got["u2", "content_type", "episode"]["share"] == pytest.approx(900_000 / 1_240_000)
    assert got["u2", "genre", "news"]["share"] == pytest.approx(900_000 / 1_240_000)
    for user in ("u1", "u2"):
        for facet in ("genre", "artist", "content_type", "hour"):
            total = sum(r["share"] for (u, f, _), r in got.items() if u == user and f == facet)
            assert total == pytest.approx(1.0)


def test_outcomes_say_what_followed_an_impression(built: Settings) -> None:
    got = rows(built, "outcomes", "impression_id")
    i1 = got["i1"]
    assert (i1["streamed"], i1["saved"], i1["skipped"], i1["returned"], i1["complete"]) == (
        True, True, False, False, False,
    )  # fmt: skip
    assert i1["ms_played"] == 300_000 and i1["propensity"] == 0.5 and i1["variant"] == "A"


def test_every_table_records_how_it_was_made(built: Settings) -> None:
    meta = feature_table(built, "item_stats").manifest().meta
    assert meta["engine"] == "duckdb" and meta["schema_version"] == 1
    assert meta["inputs"]["events"]["rows"] == 10
    assert meta["as_of"].startswith("2026-11-01T20:00")
    assert meta["params"]["half_life_days"] == 30.0
