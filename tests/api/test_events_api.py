from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from fastapi.testclient import TestClient

from playnext.api.app import create_app
from playnext.api.keys import KeyStore
from playnext.config import Settings
from tests.conftest import event
from tests.events.helpers import ids_in_log


@pytest.fixture
def small_limits(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_batch_events": 50, "max_body_bytes": 64 * 1024})


@pytest.fixture
def client(small_limits: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(small_limits)) as c:
        yield c


@pytest.fixture
def auth(small_limits: Settings) -> dict[str, str]:
    _, token = KeyStore(small_limits.keys_file).create(["ingest"])
    return {"Authorization": f"Bearer {token}"}


def stored(settings: Settings) -> list[str]:
    return ids_in_log(settings.log_dir)


def test_accepted_duplicate_and_rejected_events_are_listed(
    client: TestClient, auth: dict, small_limits: Settings
) -> None:
    good, bad = event(), event(ms_played="long")
    r = client.post("/v1/events", json=[good, good, bad], headers=auth)
    assert r.status_code == 200
    body = r.json()
    assert body["accepted_ids"] == [good["event_id"]]
    assert body["duplicate_ids"] == [good["event_id"]]
    assert body["rejections"][0]["index"] == 2 and "int" in body["rejections"][0]["reason"]
    assert stored(small_limits) == [good["event_id"]]


def test_ndjson_bodies_are_accepted(client: TestClient, auth: dict, small_limits: Settings) -> None:
    records = [event(), event("skip")]
    body = b"\n".join(msgspec.json.encode(r) for r in records)
    r = client.post("/v1/events", content=body, headers=auth | {"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200 and r.json()["accepted"] == 2


def test_a_batch_of_only_bad_events_is_422_and_stores_nothing(
    client: TestClient, auth: dict, small_limits: Settings
) -> None:
    r = client.post("/v1/events", json=[{"type": "play"}, {"nope": 1}], headers=auth)
    assert r.status_code == 422 and r.json()["rejected"] == 2
    assert stored(small_limits) == []


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer pn_nope_nope"}, 401), ({"Authorization": "Basic abc"}, 401)],
)
def test_missing_or_unknown_keys_are_401(client: TestClient, headers: dict, status: int) -> None:
    r = client.post("/v1/events", json=[event()], headers=headers)
    assert r.status_code == status
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"] == "unauthorized"


def test_a_key_of_the_wrong_scope_is_403(client: TestClient, small_limits: Settings) -> None:
    _, token = KeyStore(small_limits.keys_file).create(["read"])
    r = client.post("/v1/events", json=[event()], headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and "ingest" in r.json()["message"]


def test_a_revoked_key_is_refused_within_the_recheck_interval(small_limits: Settings) -> None:
    import time

    store = KeyStore(small_limits.keys_file)
    key, token = store.create(["ingest"])
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(small_limits.model_copy(update={"keys_recheck_s": 0.2}))) as client:
        assert client.post("/v1/events", json=[event()], headers=headers).status_code == 200
        store.revoke(key.key_id)
        time.sleep(0.25)
        assert client.post("/v1/events", json=[event()], headers=headers).status_code == 401


def test_too_many_events_is_413_and_stores_nothing(client: TestClient, auth: dict, small_limits: Settings) -> None:
    r = client.post("/v1/events", json=[event() for _ in range(51)], headers=auth)
    assert r.status_code == 413 and "limit is 50" in r.json()["message"]
    assert stored(small_limits) == []


def test_an_oversized_body_is_413(client: TestClient, auth: dict, small_limits: Settings) -> None:
    r = client.post("/v1/events", json=[event(user_id="u" * 100_000)], headers=auth)
    assert r.status_code == 413
    assert stored(small_limits) == []


def test_an_oversized_chunked_body_is_413(client: TestClient, auth: dict) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(2000):
            yield msgspec.json.encode(event()) + b","
        yield b"{}]"

    r = client.post("/v1/events", content=chunks(), headers=auth | {"Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b'{"type": "play"}', 400),
        (b"[]", 400),
        (b"[" * 20_000 + b"]" * 20_000, 400),
    ],
)
def test_malformed_bodies_are_clear_4xx(client: TestClient, auth: dict, body: bytes, status: int) -> None:
    r = client.post("/v1/events", content=body, headers=auth | {"Content-Type": "application/json"})
    assert r.status_code == status
    assert set(r.json()) == {"error", "message"}
    assert "Traceback" not in r.text


def test_hostile_fields_are_rejected_and_good_neighbours_kept(
    client: TestClient, auth: dict, small_limits: Settings
) -> None:
    good = event()
    hostile = [
        event(user_id="a\x00b"),
        event(item_id="x" * 5000),
        event(extra={"a": [[[[[[{"b": 1}]]]]]]}),
        event(ts="not a time"),
        event(ms_played=10**30),
        event(event_id=["list"]),
    ]
    r = client.post("/v1/events", json=[*hostile, good], headers=auth)
    assert r.status_code == 200
    assert r.json()["rejected"] == len(hostile)
    assert stored(small_limits) == [good["event_id"]]


def test_unsupported_media_type_is_415(client: TestClient, auth: dict) -> None:
    r = client.post("/v1/events", content=b"<xml/>", headers=auth | {"Content-Type": "application/xml"})
    assert r.status_code == 415


def test_openapi_spec_describes_the_event_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"Play", "Impression", "IngestReport", "Event"} <= set(schemas)
    assert "ms_played" in schemas["Play"]["required"]
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-ndjson"} <= set(body)


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["log_writable"] is True


def test_unknown_routes_answer_json_404(client: TestClient) -> None:
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"] == "http_error"
