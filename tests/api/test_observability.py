"""Request metrics and FastAPI's OpenTelemetry switch: each request is timed under its route, method and status
(the labelled series is looked up once per triple, so one must never be counted under another's), and FastAPI's
native OpenTelemetry sees requests only when ``opentelemetry`` is on."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace

from playnext.api.app import create_app
from playnext.api.keys import KeyStore
from playnext.config import Settings


def _counts(app: Any) -> dict[tuple[str, str, str], float]:
    timed = app.state.metrics.family("playnext_http_request_duration_seconds")
    return {(s.labels["route"], s.labels["method"], s.labels["status"]): s.value
            for metric in timed for s in metric.samples if s.name.endswith("_count")}  # fmt: skip


def test_requests_are_timed_under_their_route_method_and_status(settings: Settings) -> None:
    app = create_app(settings)
    auth = {"Authorization": f"Bearer {KeyStore(settings.keys_file).create(['read'])[1]}"}
    with TestClient(app) as client:
        for _ in range(3):
            assert client.get("/v1/users/u1/discover-weekly").status_code == 401
        assert client.get("/v1/users/u2/discover-weekly", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.get("/v1/users/u1/discover-weekly?n=0", headers=auth).status_code == 422
        assert client.get("/healthz").status_code == 200
        assert client.post("/v1/users/u1/discover-weekly").status_code == 405
        assert client.get("/no/such/path").status_code == 404
        counts = _counts(app)
    template = "/v1/users/{user_id}/discover-weekly"
    assert counts[(template, "GET", "401")] == 4
    assert counts[(template, "GET", "422")] == 1  # the same route and method, another status: another series
    assert counts[(template, "POST", "405")] == 1
    assert counts[("/healthz", "GET", "200")] == 1
    assert counts[("unmatched", "GET", "404")] == 1
    assert sum(counts.values()) == 8


class _Recording(trace.TracerProvider):
    """A configured tracer provider, as an SDK's would be, that records the spans started."""

    def __init__(self) -> None:
        self.spans: list[str] = []

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        spans = self.spans

        class Tracer(trace.NoOpTracer):
            def start_span(self, name: str, *a: Any, **k: Any) -> trace.Span:
                spans.append(name)
                return super().start_span(name, *a, **k)

        return Tracer()


@pytest.mark.parametrize("on", [False, True])
def test_fastapi_opentelemetry_sees_requests_only_when_switched_on(
    settings: Settings, on: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = _Recording()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    with TestClient(create_app(settings.model_copy(update={"opentelemetry": on}))) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/users/u1/discover-weekly").status_code == 401
    # a server span per request when on (FastAPI adds its own spans inside the routes it answers itself)
    assert provider.spans.count("GET") == (2 if on else 0) and bool(provider.spans) == on, provider.spans
