"""Property-based: whatever JSON a client sends, the collector answers a clear 2xx/4xx and stores only valid events."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playnext.api.app import create_app
from playnext.api.keys import KeyStore
from playnext.config import Settings
from playnext.events import framing
from playnext.events.log import list_segments
from playnext.events.schema import EVENT_DECODER
from tests.conftest import event
from tests.events.helpers import ids_in_log

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
FIELDS = ["type", "event_id", "user_id", "ts", "item_id", "item_type", "ms_played", "reason_end", "query", "position"]
mutated_events = st.builds(
    lambda base, key, value, drop: {k: v for k, v in {**base, key: value}.items() if k != drop},
    st.sampled_from([event(), event("impression"), event("search"), event("playlist_add")]),
    st.sampled_from(FIELDS),
    json_values,
    st.sampled_from([*FIELDS, None]),
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict, Settings]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("fuzz") / "data")
    _, token = KeyStore(settings.keys_file).create(["ingest"])
    with TestClient(create_app(settings)) as client:
        yield client, {"Authorization": f"Bearer {token}"}, settings


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(mutated_events | json_values, min_size=1, max_size=8))
def test_any_batch_gets_a_clear_answer_and_only_valid_events_are_stored(world, batch) -> None:  # type: ignore[no-untyped-def]
    client, headers, _ = world
    r = client.post(
        "/v1/events", content=msgspec.json.encode(batch), headers=headers | {"Content-Type": "application/json"}
    )
    assert r.status_code in (200, 400, 413, 422), r.text
    body = r.json()
    if r.status_code in (200, 422):
        assert body["accepted"] + body["duplicates"] + body["rejected"] == len(batch)
        assert all(0 <= rej["index"] < len(batch) for rej in body["rejections"])
    else:
        assert set(body) == {"error", "message"}


def test_everything_stored_by_the_fuzzer_is_valid(world) -> None:  # type: ignore[no-untyped-def]
    _, _, world_settings = world
    stored = 0
    for _, path in list_segments(world_settings.log_dir):
        for frame in framing.scan(path).frames:
            for line in frame.payload.splitlines():
                EVENT_DECODER.decode(line)  # raises if anything invalid got through
                stored += 1
    assert stored == len(set(ids_in_log(world_settings.log_dir)))
