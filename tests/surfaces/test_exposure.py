"""Impressions as the surfaces log them: byte for byte the events a client's ``Impression`` would be."""

from __future__ import annotations

import datetime as dt

from playnext.events.schema import BATCH_DECODER, Impression, encode_lines
from playnext.surfaces.common import Pick, SurfaceList
from playnext.surfaces.exposure import ImpressionLine, exposure_id, home_impressions, impressions
from playnext.surfaces.home import HomePage, Shelf

AT = dt.datetime(2026, 11, 26, 1, 2, 3, 456789, tzinfo=dt.UTC)


def _as_events(lines: list[ImpressionLine]) -> list[Impression]:
    return [
        Impression(event_id=x.event_id, user_id=x.user_id, ts=x.ts, item_id=x.item_id, item_type=x.item_type,
                   surface=x.surface, position=x.position, request_id=x.request_id, variant=x.variant,
                   propensity=x.propensity)
        for x in lines
    ]  # fmt: skip


def test_lines_encode_as_the_impression_events_they_stand_for() -> None:
    shown = SurfaceList("discover-weekly", [Pick('t"1', "track", 0.5, "new"), Pick("mix-2", "mix", 0.1, "mix")],
                        False, "v1")  # fmt: skip
    lines = impressions(shown, ["u1", "ü 2"], "req-1", AT, {"u1": "exp:b", "ü 2": None})
    encoded = encode_lines(lines)
    assert encoded == encode_lines(_as_events(lines))
    decoded = BATCH_DECODER.decode(b"[" + encoded.strip().replace(b"\n", b",") + b"]")
    assert [(e.user_id, e.position, e.item_id, e.item_type, e.variant, e.propensity) for e in decoded] == [
        ("u1", 0, 't"1', "track", "exp:b", 1.0), ("u1", 1, "mix-2", "playlist", "exp:b", 1.0),
        ("ü 2", 0, 't"1', "track", None, 1.0), ("ü 2", 1, "mix-2", "playlist", None, 1.0),
    ]  # fmt: skip
    assert len({e.event_id for e in decoded}) == 4


def test_home_lines_carry_each_shelf_and_its_propensity() -> None:
    page = HomePage(
        shelves=[Shelf("top", "Top", [Pick("t1", "track", 1.0, "a")], propensity=0.25),
                 Shelf("new", "New", [Pick("t2", "track", 1.0, "b"), Pick("ar1", "artist", 1.0, "c")],
                       propensity=0.5)],
        model_version="v1", fallback=False, segment="warm",
    )  # fmt: skip
    lines = home_impressions(page, "u1", "req-2", AT, "exp:a")
    assert encode_lines(lines) == encode_lines(_as_events(lines))
    assert [(x.surface, x.position, x.propensity, x.item_type) for x in lines] == [
        ("home/top", 0, 0.25, "track"), ("home/new", 1, 0.5, "track"), ("home/new", 2, 0.5, "artist"),
    ]  # fmt: skip


def test_exposure_ids_never_repeat_in_a_process() -> None:
    ids = {exposure_id() for _ in range(10_000)}
    assert len(ids) == 10_000
