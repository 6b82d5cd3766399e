from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from playnext.events.validation import BadBody, Clock, split_body, validate
from tests.conftest import event

CLOCK = Clock(max_skew=dt.timedelta(hours=24))


def body(*records: dict) -> bytes:
    return msgspec.json.encode(list(records))


def test_a_mixed_batch_keeps_the_good_and_names_the_bad_by_index() -> None:
    good1, bad, good2 = event(), event(ms_played=-5), event("save")
    events, kept, rejected = validate(split_body(body(good1, bad, good2), ndjson=False), CLOCK)
    assert [e.event_id for e in events] == [good1["event_id"], good2["event_id"]]
    assert kept == [0, 2]
    assert [(r.index, r.event_id) for r in rejected] == [(1, bad["event_id"])]
    assert ">= 0" in rejected[0].reason


def test_ndjson_skips_blank_lines() -> None:
    raw = msgspec.json.encode(event()) + b"\n\n" + msgspec.json.encode(event("skip")) + b"\n"
    events, _, rejected = validate(split_body(raw, ndjson=True), CLOCK)
    assert len(events) == 2 and not rejected


@pytest.mark.parametrize("raw", [b"{", b"not json", b'{"type": "play"}', b"\xff\xfe"])
def test_a_body_that_is_not_an_array_of_json_is_refused_whole(raw: bytes) -> None:
    with pytest.raises(BadBody):
        split_body(raw, ndjson=False)


def test_deep_nesting_is_a_clear_error_not_a_crash() -> None:
    with pytest.raises(BadBody, match="nested too deeply"):
        split_body(b"[" * 100_000 + b"]" * 100_000, ndjson=False)
    deep = b'{"type":"play","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    events, _, rejected = validate([deep, msgspec.json.encode(event())], CLOCK)
    assert len(events) == 1 and rejected[0].index == 0


def test_events_from_the_future_are_rejected_past_the_allowed_skew() -> None:
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    events, _, rejected = validate(split_body(body(event(ts=soon), event(ts=later)), False), CLOCK)
    assert len(events) == 1
    assert "in the future" in rejected[0].reason


def test_history_from_long_ago_is_accepted() -> None:
    events, _, rejected = validate(split_body(body(event(ts="1997-09-20T05:05:10Z")), False), CLOCK)
    assert len(events) == 1 and not rejected


def test_rows_from_csv_coerce_numbers_and_treat_empty_cells_as_absent() -> None:
    row = {k: str(v) for k, v in event().items()} | {"country": "", "request_id": ""}
    events, _, rejected = validate([row], CLOCK)
    assert not rejected and events[0].ms_played == 180_000 and events[0].country is None


def test_a_huge_string_is_rejected_and_the_reason_stays_short() -> None:
    events, _, rejected = validate(split_body(body(event(user_id="u" * 1_000_000)), False), CLOCK)
    assert not events and len(rejected[0].reason) <= 300


def test_nulls_for_fields_a_type_lacks_mean_absent() -> None:
    wide = event() | {"playlist_id": None, "query": None, "position": None}
    events, _, rejected = validate([msgspec.json.encode(wide)], CLOCK)
    assert not rejected and events[0].event_id == wide["event_id"]
    typo = event() | {"ms_playd": None, "ms_played": None}
    _, _, rejected = validate([msgspec.json.encode(typo)], CLOCK)
    assert rejected and "ms_play" in rejected[0].reason


@pytest.mark.parametrize("ts", ["2026-10-01 00:00:32.95+00", "2026-10-01T02:00:32+02:00", "20261001T000032Z"])
def test_iso_times_with_an_offset_are_accepted_and_normalised(ts: str) -> None:
    events, _, rejected = validate([msgspec.json.encode(event(ts=ts))], CLOCK)
    assert not rejected and events[0].ts.utcoffset() is not None


def test_a_time_without_offset_is_still_rejected() -> None:
    _, _, rejected = validate([msgspec.json.encode(event(ts="2026-10-01 00:00:32"))], CLOCK)
    assert rejected and "ts" in rejected[0].reason
