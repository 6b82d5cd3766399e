from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from playnext.events.schema import EVENT_DECODER, EVENT_TYPES, Play, Search, encode_lines
from tests.conftest import event


def decode(record: dict) -> object:
    return EVENT_DECODER.decode(msgspec.json.encode(record))


@pytest.mark.parametrize("type_", EVENT_TYPES)
def test_every_event_type_decodes(type_: str) -> None:
    decoded = decode(event(type_))
    assert decoded.__struct_config__.tag == type_


def test_timestamps_keep_their_instant_whatever_the_offset() -> None:
    decoded = decode(event(ts="2026-11-20T12:00:00+02:00"))
    assert decoded.ts == dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"ts": "2026-11-20T10:00:00"}, "timezone"),
        ({"ms_played": -1}, ">= 0"),
        ({"ms_played": "1000"}, "Expected `int`"),
        ({"ms_played": 25 * 3600 * 1000}, "<= 86400000"),
        ({"item_type": "video"}, "Invalid enum value"),
        ({"type": "like"}, "Invalid value 'like'"),
        ({"event_id": ""}, "length >= 1"),
        ({"event_id": "x" * 129}, "length <= 128"),
        ({"user_id": "u\x00"}, "non-printable"),
        ({"user_id": "u\nx"}, "non-printable"),
        ({"country": "usa"}, "regex"),
        ({"ms_playd": 10}, "unknown field `ms_playd`"),
        ({"reason_end": "bored"}, "Invalid enum value"),
    ],
)
def test_bad_fields_are_rejected_with_a_reason(change: dict, fragment: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=fragment):
        decode(event("play", **change))


def test_missing_type_specific_field_is_named() -> None:
    record = event("play")
    del record["ms_played"]
    with pytest.raises(msgspec.ValidationError, match="ms_played"):
        decode(record)


@pytest.mark.parametrize("propensity", [0.0, -0.1, 1.5])
def test_impression_propensity_must_be_a_probability(propensity: float) -> None:
    with pytest.raises(msgspec.ValidationError, match="propensity"):
        decode(event("impression", propensity=propensity))


def test_search_needs_no_clicked_item() -> None:
    record = event("search")
    del record["item_id"], record["item_type"]
    decoded = decode(record)
    assert isinstance(decoded, Search) and decoded.item_id is None


def test_canonical_lines_round_trip() -> None:
    events = [decode(event("play")), decode(event("search"))]
    lines = encode_lines(events).splitlines()
    assert [EVENT_DECODER.decode(line) for line in lines] == events
    assert isinstance(events[0], Play)
