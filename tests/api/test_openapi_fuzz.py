"""Property-based fuzzing of the whole HTTP API from its own OpenAPI spec (schemathesis), against a real server:
whatever a client sends, the answer is never a 5xx, and every error is a clear JSON 4xx without a trace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.e2e import Server, env_for, playnext

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    env = env_for(tmp_path_factory.mktemp("fuzz") / "data", compact_interval_s="1")
    playnext("simulate", "--users", "40", "--tracks", "200", "--days", "5", env=env)
    playnext("train", "--generators", "popularity,als,cooccurrence", "--promote", env=env, timeout=300)
    key = playnext("keys", "create", "--scope", "admin", "--rate", "0", "-q", env=env).stdout.strip()
    server = Server(env)
    try:
        yield server.url, key
    finally:
        server.stop()


def test_no_request_gets_a_5xx(served: tuple[str, str]) -> None:
    """Each operation of the spec, with generated paths, queries and bodies, with a key and without one.
    (schemathesis' own pytest plugin does not load under this pytest; its strategies run under plain Hypothesis.)"""
    url, key = served
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    calls: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            for headers in ({"Authorization": f"Bearer {key}"}, {}):
                response = case.call(base_url=url, headers=headers, timeout=30)
                calls.append(response.status_code)
                where = (case.method, case.formatted_path, case.query, response.text[:300])
                assert response.status_code < 500, where
                if response.status_code >= 400:
                    body = response.json()
                    assert ("message" in body or "rejections" in body) and "Traceback" not in response.text, where

        check()
    assert len(calls) >= 20 * len(operations) and 200 in calls, sorted(set(calls))


def test_the_spec_covers_every_route(served: tuple[str, str]) -> None:
    import httpx

    paths = set(httpx.get(f"{served[0]}/openapi.json").json()["paths"])
    assert {"/v1/events", "/v1/users/{user_id}/home", "/v1/users/{user_id}", "/v1/models", "/v1/search",
            "/v1/blend", "/healthz", "/readyz"} <= paths  # fmt: skip
