"""Request metrics and FastAPI's OpenTelemetry switch: each request is timed under its route, method and status
(the labelled series is looked up once per triple, so one must never be counted under another's), and FastAPI's
native OpenTelemetry sees requests only when ``opentelemetry`` is on."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Histogram

from playnext.api import observability
from playnext.api.app import create_app
from playnext.api.keys import KeyStore
from playnext.api.observability import FLUSH_S, LATENCY_BUCKETS, Metrics, Tally, buffered, flush_periodically
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
    app = create_app(settings.model_copy(update={"opentelemetry": on}))
    assert app.direct_http is not on  # type: ignore[attr-defined]  # off: requests skip FastAPI's __call__
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/users/u1/discover-weekly").status_code == 401
    # a server span per request when on (FastAPI adds its own spans inside the routes it answers itself)
    assert provider.spans.count("GET") == (2 if on else 0) and bool(provider.spans) == on, provider.spans


def _samples(registry: Any, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = [s for m in registry.collect() if m.name == name for s in m.samples]
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples if not s.name.endswith("_created")}


def test_tallied_series_reach_prometheus_exactly_as_direct_ones_would() -> None:
    """A tallied observation lands in the bucket prometheus_client itself would put it in (a value on a bound
    counts under that bound), with the same sum, once flushed; until then prometheus_client holds none of it."""
    metrics = Metrics()
    timed, answered = metrics.timed("/r", "GET", 200), metrics._answered("home", "precomputed")
    assert buffered(timed) and buffered(answered)  # this prometheus_client has the bucket values the tally uses
    direct = Histogram("playnext_http_request_duration_seconds", "x", ["route", "method", "status"],
                       buckets=LATENCY_BUCKETS, registry=(reference := CollectorRegistry()))  # fmt: skip
    values = [0.0, 0.0005, 0.00050001, 0.001, 0.0024999, 0.015, 10.0, 10.5, 3e3, *(i / 977 for i in range(200))]
    for value in values:
        timed.observe(value)
        direct.labels("/r", "GET", "200").observe(value)
    for _ in range(3):
        metrics.answer("home", "precomputed")
    answered.inc(2.5)
    name = "playnext_http_request_duration_seconds"
    assert _samples(metrics.registry, name)[("playnext_http_request_duration_seconds_count",
                                             (("method", "GET"), ("route", "/r"), ("status", "200")))] == 0  # fmt: skip
    metrics.tally.flush()
    assert _samples(metrics.registry, name) == _samples(reference, name)
    answers = _samples(metrics.registry, "playnext_surface_answers")
    assert answers == {("playnext_surface_answers_total", (("source", "precomputed"), ("surface", "home"))): 5.5}
    metrics.tally.flush()  # nothing new: nothing handed over twice
    assert _samples(metrics.registry, name) == _samples(reference, name)


def test_no_count_is_lost_between_threads_and_a_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "getswitchinterval", sys.getswitchinterval)
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can, mid-increment
    try:
        metrics, n, threads = Metrics(), 20_000, 4
        stop = threading.Event()

        def flushing() -> None:
            while not stop.is_set():
                metrics.tally.flush()

        def counting(t: int) -> None:
            timed, answered = metrics.timed("/r", "GET", 200), metrics._answered("home", "live")
            for i in range(n):
                timed.observe(0.001 * (i % 3))
                answered.inc()

        flusher = threading.Thread(target=flushing)
        flusher.start()
        workers = [threading.Thread(target=counting, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        stop.set()
        flusher.join()
    finally:
        sys.setswitchinterval(0.005)
    metrics.tally.flush()  # what the last increments left tallied
    samples = _samples(metrics.counted, "playnext_http_request_duration_seconds")
    labels = (("method", "GET"), ("route", "/r"), ("status", "200"))
    assert samples[("playnext_http_request_duration_seconds_count", labels)] == n * threads
    at_most_1ms = sum(1 for i in range(n) if i % 3 < 2) * threads  # 0 and 0.001 s; 0.002 s is over
    assert samples[("playnext_http_request_duration_seconds_bucket", (("le", "0.001"), *labels))] == at_most_1ms
    answers = _samples(metrics.counted, "playnext_surface_answers")
    assert answers[("playnext_surface_answers_total", (("source", "live"), ("surface", "home")))] == n * threads


def test_a_running_app_hands_its_counts_over_every_flush_and_at_its_stop(settings: Settings) -> None:
    app = create_app(settings)
    registry = app.state.metrics.registry  # read directly: ``family`` and a scrape would flush first

    def count() -> float:
        return sum(v for (name, _), v in _samples(registry, "playnext_http_request_duration_seconds").items()
                   if name.endswith("_count"))  # fmt: skip

    with TestClient(app) as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
        deadline = time.monotonic() + 10 * FLUSH_S
        while count() < 3 and time.monotonic() < deadline:
            time.sleep(FLUSH_S / 10)
        assert count() == 3  # the periodic flush, with no scrape
        assert client.get("/healthz").status_code == 200
    assert count() == 4  # the stop's


def test_a_failing_flush_is_logged_and_the_next_one_still_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(observability, "FLUSH_S", 0.01)
    tally, calls = Tally(), []

    def flush() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("the metrics file is gone")

    monkeypatch.setattr(tally, "flush", flush)

    async def run() -> None:
        task = asyncio.create_task(flush_periodically(tally))
        await asyncio.sleep(0.2)
        assert not task.done()
        task.cancel()

    asyncio.run(run())
    assert len(calls) >= 3
    assert "handing the tallied request metrics to prometheus_client failed" in caplog.text
