"""Exposures as the surfaces log them: one line per shown list and viewer (Daily Mix's mixes: one for the answer),
unfolded by compaction into exactly the impression events a client's ``Impression`` would be."""

from __future__ import annotations

import datetime as dt
import io

import msgspec
import pyarrow.json as pj
import pytest

from playnext.events.exposures import BadExposure, Exposure, parse_lines
from playnext.events.schema import ARROW_SCHEMA, EVENT_DECODER, Impression, Play, encode_lines
from playnext.surfaces.common import Pick, SurfaceList
from playnext.surfaces.exposure import exposure_id, home_impressions, impressions, listener_impressions
from playnext.surfaces.home import HomePage, Shelf
from playnext.surfaces.page import page_of

AT = dt.datetime(2026, 11, 26, 1, 2, 3, 456789, tzinfo=dt.UTC)


def _as_lake(events: list[Impression | Play]) -> list[dict]:
    """What the lake held when every impression was logged as its own event."""
    table = pj.read_json(io.BytesIO(encode_lines(events)), parse_options=pj.ParseOptions(explicit_schema=ARROW_SCHEMA))
    return sorted(table.to_pylist(), key=lambda row: row["event_id"])


def _unfolded(records: list[msgspec.Struct]) -> list[dict]:
    table = parse_lines(encode_lines(records))
    assert table.schema == ARROW_SCHEMA
    return sorted(table.to_pylist(), key=lambda row: row["event_id"])


def test_a_shown_list_unfolds_into_the_impression_events_it_stands_for() -> None:
    shown = SurfaceList("discover-weekly", [Pick('t"1', "track", 0.5, "new"), Pick("mix-2", "mix", 0.1, "mix")],
                        False, "v1")  # fmt: skip
    lines = impressions(page_of(shown), ["u1", "ü 2"], "req-1", AT, {"u1": "exp:b", "ü 2": None}, exposure="x9")
    assert len(lines) == 2  # one per viewer, not per item
    expected = [
        Impression(event_id=f"x9-{n}-{pos}", user_id=user, ts=AT, item_id=item, item_type=kind,
                   surface="discover-weekly", position=pos, request_id="req-1", variant=variant, propensity=1.0)
        for n, (user, variant) in enumerate([("u1", "exp:b"), ("ü 2", None)])
        for pos, (item, kind) in enumerate([('t"1', "track"), ("mix-2", "playlist")])
    ]  # fmt: skip
    assert _unfolded(lines) == _as_lake(expected)


def test_home_numbers_cards_down_the_page_with_each_shelf_and_its_propensity() -> None:
    page = HomePage(
        shelves=[Shelf("top", "Top", [Pick("t1", "track", 1.0, "a")], propensity=0.25),
                 Shelf("empty", "Nothing", [], propensity=0.1),
                 Shelf("new", "New", [Pick("t2", "track", 1.0, "b"), Pick("ar1", "artist", 1.0, "c")],
                       propensity=0.5)],
        model_version="v1", fallback=False, segment="warm",
    )  # fmt: skip
    lines = home_impressions(page, "u1", "req-2", AT, "exp:a", exposure="x7")
    assert [x.surface for x in lines] == ["home/top", "home/new"]  # an empty shelf logs nothing
    expected = [
        Impression(event_id=f"x7-{pos}", user_id="u1", ts=AT, item_id=item, item_type=kind, surface=surface,
                   position=pos, request_id="req-2", variant="exp:a", propensity=propensity)
        for pos, (surface, propensity, item, kind) in enumerate(
            [("home/top", 0.25, "t1", "track"), ("home/new", 0.5, "t2", "track"), ("home/new", 0.5, "ar1", "artist")]
        )
    ]  # fmt: skip
    assert _unfolded(lines) == _as_lake(expected)


def test_client_events_and_exposures_in_one_payload_all_reach_the_lake() -> None:
    play = Play(event_id="p1", user_id="u1", ts=AT, item_id="t9", item_type="track", ms_played=3000)
    shown = SurfaceList("next-track", [Pick("t1", "track", 1.0, "after")], False, "v1")
    rows = _unfolded([play, *impressions(page_of(shown), ["u1"], "req-3", AT, exposure="x5"), play])
    assert [(r["event_id"], r["type"]) for r in rows] == [("p1", "play"), ("p1", "play"), ("x5-0-0", "impression")]
    assert impressions(page_of(SurfaceList("next-track", [], False, "v1")), ["u1"], "req-4", AT) == []


def test_an_exposure_whose_items_and_types_disagree_is_refused() -> None:
    bad = Exposure("r", "discover-weekly", None, 1.0, "x1", "u1", AT, ["t1", "t2"], ["track"])
    with pytest.raises(BadExposure, match="differ in length"):
        parse_lines(encode_lines([bad]))


def test_a_client_cannot_post_an_exposure() -> None:
    line = msgspec.json.encode(Exposure("r", "discover-weekly", None, 1.0, "x1", "u1", AT, ["t1"], ["track"]))
    with pytest.raises(msgspec.ValidationError, match="exposure"):
        EVENT_DECODER.decode(line)


def test_exposure_ids_never_repeat_in_a_process() -> None:
    ids = {exposure_id() for _ in range(10_000)}
    assert len(ids) == 10_000


def test_a_list_of_tracks_logs_no_types_and_unfolds_as_tracks_beside_typed_and_older_lines() -> None:
    tracks = page_of(SurfaceList("daily-mix", [Pick(f"t{i}", "track", 1.0, "fav") for i in range(20)], False, "v1"))
    mixed = page_of(SurfaceList("daily-mix", [Pick("t1", "track", 1.0, "a"), Pick("p1", "episode", 1.0, "b")],
                                False, "v1"))  # fmt: skip
    [untyped] = impressions(tracks, ["u1"], "req-5", AT, exposure="x3")
    [typed] = impressions(mixed, ["u1"], "req-5", AT, exposure="x4")
    assert untyped.item_types is None and typed.item_types is not None
    assert b'"track"' not in msgspec.json.encode(untyped)  # 20 tracks: 174 bytes a line fewer
    older = msgspec.structs.replace(untyped, event_id="x2-0", item_types=["track"] * 20)  # as logged before
    rows = _unfolded([untyped, typed, older])
    kinds = {(r["event_id"].rsplit("-", 1)[0], r["item_type"]) for r in rows}
    assert kinds == {("x3-0", "track"), ("x2-0", "track"), ("x4-0", "track"), ("x4-0", "episode")}
    assert [r["item_id"] for r in rows if r["event_id"].startswith("x3-0-")] == sorted(f"t{i}" for i in range(20))
    assert len(rows) == 42
    home = HomePage(shelves=[Shelf("top", "Top", [Pick("t1", "track", 1.0, "a")], propensity=1.0)],
                    model_version="v1", fallback=False, segment="warm")  # fmt: skip
    assert [line.item_types for line in home_impressions(home, "u1", "req-6", AT)] == [None]


def _mix(surface: str, items: list[tuple[str, str]]) -> SurfaceList:
    return SurfaceList(surface, [Pick(item, kind, 1.0, "fav") for item, kind in items], False, "v1")


def test_an_answers_mixes_are_one_line_that_unfolds_into_each_mixs_impressions() -> None:
    mixes = [[("t1", "track"), ("t2", "track")], [], [("t3", "track"), ("p1", "episode"), ("t1", "track")]]
    pages = [page_of(_mix("daily-mix", items)) for items in mixes]
    [line] = listener_impressions(pages, "u1", "req-7", "exp:c", AT, "x8")
    assert line.lists == [2, 0, 3] and line.event_id == "x8-0"
    expected = [
        Impression(event_id=f"x8-0.{k}-{pos}", user_id="u1", ts=AT, item_id=item, item_type=kind, surface="daily-mix",
                   position=pos, request_id="req-7", variant="exp:c", propensity=1.0)
        for k, items in enumerate(mixes) for pos, (item, kind) in enumerate(items)
    ]  # fmt: skip
    single = impressions(page_of(_mix("discover-weekly", [("t9", "track")])), ["u2"], "req-8", AT, exposure="x9")
    [second] = listener_impressions(pages[::-1], "u3", "req-10", None, AT, "x12")  # each line's mixes count from 0
    assert _unfolded([line, *single, second]) == _as_lake(
        [*expected, Impression(event_id="x9-0-0", user_id="u2", ts=AT, item_id="t9", item_type="track",
                               surface="discover-weekly", position=0, request_id="req-8", propensity=1.0),
         *(Impression(event_id=f"x12-0.{k}-{pos}", user_id="u3", ts=AT, item_id=item, item_type=kind,
                      surface="daily-mix", position=pos, request_id="req-10", propensity=1.0)
           for k, items in enumerate(mixes[::-1]) for pos, (item, kind) in enumerate(items))]
    )  # fmt: skip
    tracks = [page_of(_mix("daily-mix", [(f"t{i}", "track")] * 20)) for i in range(6)]
    [untyped] = listener_impressions(tracks, "u1", "req-9", None, AT, "x10")
    assert untyped.item_types is None and len(encode_lines([untyped])) < 1300  # six lines were 2.2 KB
    assert listener_impressions([page_of(_mix("daily-mix", []))] * 2, "u1", "r", None, AT, "x11") == []


@pytest.mark.parametrize(("lists", "first", "positions"), [
    ([2, 2], 0, [0, 1, 0, 1]), ([4, 0], 0, [0, 1, 2, 3]), ([1, 3], 10, [10, 10, 11, 12]),
    ([1], 0, None), ([3, -1, 2], 0, None), ([], 0, None), ([2, 2, 1], 0, None),
])  # fmt: skip
def test_each_list_counts_from_the_lines_first_position_and_lists_must_add_up_to_the_items(lists: list[int], first: int,
                                                          positions: list[int] | None) -> None:  # fmt: skip
    line = Exposure("r", "daily-mix", None, 1.0, "x1-0", "u1", AT, ["t1", "t2", "t3", "t4"], None, first, lists)
    if positions is not None:
        assert parse_lines(encode_lines([line])).column("position").to_pylist() == positions
        return
    with pytest.raises(BadExposure, match="do not add up"):
        parse_lines(encode_lines([line]))
