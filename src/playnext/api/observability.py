"""Prometheus metrics, request ids and structured JSON logs for the HTTP service.

One registry per app (tests build many apps in one process). With several serving workers (``playnext serve
--workers N``, which sets ``PROMETHEUS_MULTIPROC_DIR``) every worker writes its counts to files there, and a
scrape, whichever worker answers it, adds up all of theirs (prometheus_client's multiprocess mode); what the state
collector reports (the log's writer, the served model) is the same from any worker.

Every request is named (``request_id_for``: its ``X-Request-Id``, taken from the client when it sends a sane one),
timed under its route template (``/v1/users/{user_id}/home``, never the raw path, which would make a series per
listener) and has its id in a context variable that log records and surface answers carry: the front door does
it (``api.front``), a few microseconds per request.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import re
import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from playnext.ids import unique_id

log = logging.getLogger(__name__)
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Surfaces aim at 15 ms at the 99th percentile: buckets are dense around it.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


FLUSH_S = 0.5  # how often a process hands its tallied counts to prometheus_client (``Tally``)


class Series:
    """A labelled metric's series, each looked up once per label values: prometheus_client's ``labels`` takes a
    lock, converts every value to a string and hashes them on every call (the latency series' lookup was about
    2.5 µs of a 42 µs hello-world request over HTTP). For label values from a bounded set only. ``wrap``: what
    the series is used through (a ``Tally``'s stand-in)."""

    def __init__(self, metric: Any, wrap: Callable[[Any], Any] = lambda series: series) -> None:
        self.metric, self.wrap = metric, wrap
        self._series: dict[tuple[Any, ...], Any] = {}

    def __call__(self, *values: Any) -> Any:
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = self.wrap(self.metric.labels(*(str(v) for v in values)))
        return series


class Tally:
    """The per-request series (each request's latency, each surface answer) counted in this process's memory and
    added to prometheus_client's every ``FLUSH_S`` (``flush_periodically``), at a graceful stop, and before this
    process reads its counts for a scrape.

    With several workers prometheus_client writes every increment through to a memory-mapped file, under a lock
    and after asking the OS for the process id (it checks for a fork): three increments per surface answer (the
    latency's bucket and sum, the answer's counter) took 4.7 µs of a Daily Mix answer's 32 in one process, and
    2 of the in-app hello-world's 8. Here an increment is a lock and an addition. What it risks: a scrape that
    another worker answers sees this one's counts up to ``FLUSH_S`` late, and a worker killed outright (SIGKILL,
    the OOM killer) loses its last ``FLUSH_S`` of them. A histogram's buckets are handed over through
    prometheus_client's own bucket values (``_buckets``, ``_sum``), which it does not document; a version that
    lacks them gets its series unbuffered (``buffered`` says which), and the tests check that this one has them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: list[_Observed | _Counted] = []

    def histogram(self, series: Any) -> Any:
        bounds = getattr(series, "_upper_bounds", None)
        if not (isinstance(bounds, list) and len(getattr(series, "_buckets", ())) == len(bounds)
                and hasattr(series, "_sum")):  # fmt: skip
            return series
        return self._keep(_Observed(self._lock, series, bounds))

    def counter(self, series: Any) -> Any:
        return self._keep(_Counted(self._lock, series))

    def _keep(self, kept: _Observed | _Counted) -> _Observed | _Counted:
        with self._lock:
            self._kept.append(kept)
        return kept

    def flush(self) -> None:
        with self._lock:
            taken = [(kept, kept.take()) for kept in self._kept]
        for kept, counts in taken:
            kept.hand_over(counts)


def buffered(series: Any) -> bool:
    """Whether a ``Series``'s series is counted in a ``Tally``."""
    return isinstance(series, _Observed | _Counted)


class _Observed:
    """A histogram series' observations since the last flush: a count per bucket, and their sum."""

    __slots__ = ("_bounds", "_counts", "_lock", "_sum", "series")

    def __init__(self, lock: threading.Lock, series: Any, bounds: list[float]) -> None:
        self._lock, self.series, self._bounds = lock, series, bounds
        self._counts, self._sum = [0] * len(bounds), 0.0

    def observe(self, amount: float) -> None:
        with self._lock:
            self._counts[bisect_left(self._bounds, amount)] += 1  # the first bound at or above it, as prometheus'
            self._sum += amount

    def take(self) -> tuple[list[int], float]:
        taken = self._counts, self._sum
        self._counts, self._sum = [0] * len(self._bounds), 0.0
        return taken

    def hand_over(self, taken: tuple[list[int], float]) -> None:
        counts, total = taken
        if any(counts):
            for bucket, n in zip(self.series._buckets, counts, strict=True):
                if n:
                    bucket.inc(n)
            self.series._sum.inc(total)


class _Counted:
    """A counter series' increments since the last flush."""

    __slots__ = ("_lock", "_total", "series")

    def __init__(self, lock: threading.Lock, series: Any) -> None:
        self._lock, self.series, self._total = lock, series, 0.0

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self._total += amount

    def take(self) -> float:
        taken, self._total = self._total, 0.0
        return taken

    def hand_over(self, taken: float) -> None:
        if taken:
            self.series.inc(taken)


async def flush_periodically(tally: Tally) -> None:
    """Every ``FLUSH_S`` on the event loop (a thread of its own would wake into the busy loop's GIL). A flush that
    fails is logged and tried again: what it took stays counted nowhere, so that a broken metrics file never takes
    the server, or the next flush, down with it."""
    while True:
        await asyncio.sleep(FLUSH_S)
        try:
            tally.flush()
        except Exception:
            log.exception("handing the tallied request metrics to prometheus_client failed")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.latency = Histogram("playnext_http_request_duration_seconds", "HTTP request latency by route template",
                                 ["route", "method", "status"], buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.ingested = Counter("playnext_ingest_events", "Events posted, by outcome", ["outcome"], registry=r)
        self.answers = Counter("playnext_surface_answers", "Surface answers by where their list came from",
                               ["surface", "source"], registry=r)  # fmt: skip
        self.store_errors = Counter("playnext_online_store_errors", "Online store calls that failed", ["operation"],
                                    registry=r)  # fmt: skip
        # Looked up per request: the route template, method and status (bounded: templates, the methods the HTTP
        # parser accepts, statuses), and a surface answer's surface and source; counted in ``tally``.
        self.tally = Tally()
        self.timed = Series(self.latency, self.tally.histogram)
        self._answered = Series(self.answers, self.tally.counter)
        self.impressions_lost = Counter("playnext_impressions_lost",
                                        "Answers given whose impressions a failed round of the log lost",
                                        registry=r)  # fmt: skip
        # The counts as a scrape sees them: this registry's, or with several workers every worker's files; then
        # what a scrape reads: those and the state collector's.
        self.counted: Any = self.registry
        if directory := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self.counted = CollectorRegistry()
            MultiProcessCollector(self.counted, path=directory)
        self.exposed = CollectorRegistry()
        self.exposed.register(self.counted)

    def answer(self, surface: str, source: str) -> None:
        """Count one surface answer."""
        self._answered(surface, source).inc()

    def watch(self, state: Any) -> None:
        """Expose what the app's parts count themselves (the log's writer, the served model) at scrape time."""
        self.exposed.register(_StateCollector(state))

    def render(self) -> bytes:
        self.tally.flush()
        return generate_latest(self.exposed)

    def family(self, name: str) -> list[Metric]:
        """One of the counts as a scrape sees it: every worker's added up (this one's up to now, the others' up to
        their last flush)."""
        self.tally.flush()
        return [m for m in self.counted.collect() if m.name == name]


class _StateCollector:
    def __init__(self, state: Any) -> None:
        self.state = state

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        event_log = getattr(self.state, "event_log", None)
        if event_log is not None:
            stats = event_log.stats
            yield CounterMetricFamily("playnext_log_fsyncs", "fsyncs of the event log", value=stats.fsyncs)
            yield CounterMetricFamily("playnext_log_fsync_seconds", "Time spent in fsync", value=stats.fsync_seconds)
            yield CounterMetricFamily("playnext_log_events_stored", "Records written to the log: client events, and "
                                      "one exposure per shown list or Daily Mix answer",
                                      value=stats.events_stored)  # fmt: skip
            yield GaugeMetricFamily("playnext_log_backlog", "Batches waiting for the log writer",
                                    value=event_log.backlog())  # fmt: skip
            yield GaugeMetricFamily("playnext_log_fresh_backlog", "Shown lists (exposures) waiting for the log "
                                    "writer's next round", value=event_log.fresh_backlog())  # fmt: skip
            yield GaugeMetricFamily("playnext_log_healthy", "1 while the log can be written",
                                    value=float(event_log.healthy))  # fmt: skip
        model = getattr(self.state, "model", None)
        version = getattr(model, "version", None)
        info = GaugeMetricFamily("playnext_model_info", "The served model version", labels=["version"])
        age = GaugeMetricFamily("playnext_model_age_seconds", "Seconds since the served version was trained")
        if version is not None:
            info.add_metric([version.id], 1.0)
            created = version.manifest.get("created")
            if created:
                import datetime as dt

                trained = dt.datetime.fromisoformat(created)
                age.add_metric([], (dt.datetime.now(dt.UTC) - trained).total_seconds())
        yield info
        yield age
        yield _srm(getattr(self.state, "settings", None))


def _srm(settings: Any) -> GaugeMetricFamily:
    """1 per running experiment whose last recorded analysis found a sample ratio mismatch (read from the
    analyses ``playnext experiment analyze`` writes, so every replica reports it)."""
    from playnext.experiments.analysis import BrokenState, latest_analysis

    family = GaugeMetricFamily("playnext_experiment_srm_detected", "1 while an experiment fails its sample-ratio "
                               "check", labels=["experiment"])  # fmt: skip
    for name, exp in sorted(settings.experiments.items()) if settings is not None else []:
        try:
            last = latest_analysis(settings, name) if exp.running else None
        except BrokenState:
            continue  # the dashboard and `playnext experiment list` say what is wrong with the file
        if last is not None:
            family.add_metric([name], float(bool(last["sample_ratio"]["mismatch"])))
    return family


def first_header(scope: Scope, name: bytes) -> bytes | None:
    """A request header's first value, read off the ASGI scope (names come lower-cased): the middleware and the
    key's check read one each per request, and Starlette's ``Headers`` would be built for it."""
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def request_id_for(scope: Scope) -> str:
    """The id a request is known by: the client's ``X-Request-Id`` when it is sane, else a new one. Most requests
    send none, so nothing is decoded or matched for them."""
    given = first_header(scope, b"x-request-id")
    return text if given is not None and _SANE_ID.match(text := given.decode("latin-1")) else unique_id()


class NamedRoute(Route):
    """A plain Starlette route that tells the middleware its template: FastAPI's router records the matched route
    only for its own routes, and the lean ones would otherwise be timed as "unmatched"."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self
        await super().handle(scope, receive, send)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the request being served, if any."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if rid := request_id.get():
            out["request_id"] = rid
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_json_logs(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.formatter.converter = time.gmtime  # type: ignore[union-attr]
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
