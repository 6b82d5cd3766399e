"""``create_app(settings)``: the one way to build the HTTP service, for ``playnext serve`` and for tests."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sys
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import numpy as np
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

import playnext
from playnext.api import errors
from playnext.api.front import FrontDoor
from playnext.api.keys import KeyStore
from playnext.api.limits import RateLimiter
from playnext.api.observability import Metrics, NamedRoute, flush_periodically
from playnext.api.routes import dashboard, events, health, models, surfaces, users
from playnext.config import Settings
from playnext.events.compaction import compact
from playnext.events.log import event_log_for
from playnext.events.log_service import AnyLog
from playnext.events.schema import Event
from playnext.events.validation import Clock, IngestReport
from playnext.experiments.ramp import LiveTreatments
from playnext.models.registry import Registry
from playnext.models.served import ServedModel
from playnext.online.session import SessionFeed
from playnext.online.store import open_store
from playnext.privacy.tombstones import Tombstones
from playnext.surfaces.search import prepare as prepare_search
from playnext.surfaces.without_model import LakeFallback
from playnext.web.data import IngestSampler

log = logging.getLogger(__name__)

# How uvicorn runs the app: ``playnext serve`` and ``bench/serving.py`` both take these, so the bench measures what
# ships. uvloop, not the standard library's loop: single-event ingest at 8 connections took 4.8k events/s on uvloop,
# 3.3k on the standard loop (``bench/ingest.py``, same session). The standard loop was fairer to handlers that
# compute for a millisecond; the computed surfaces get that fairness on uvloop by taking their turn
# (``routes.surfaces.take_turn``). httptools, with each answer written in one send (``api.one_write``).
SERVER = {"loop": "uvloop", "http": "playnext.api.one_write:OneWriteProtocol"}
SURFACE_THREADS = 2  # Blend's and search's, per server: their C and NumPy parts let go of the GIL, and two overlap


def create_app(settings: Settings, event_log: AnyLog | None = None, *,
               open_log: Callable[[], AnyLog] | None = None) -> FastAPI:  # fmt: skip
    """Build the app; it opens (and later closes) the event log and the online store, unless a log is handed in.
    ``open_log`` opens another log than ``settings``'s own (a serving worker's ``RemoteLog``) at start."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = event_log is None
        app.state.event_log = event_log or (open_log or (lambda: event_log_for(settings).open()))()
        compactor = asyncio.create_task(compact_periodically(settings)) if settings.compact_interval_s > 0 else None
        await asyncio.to_thread(app.state.model.refresh)
        _one_thread_per_request()
        reloader = asyncio.create_task(reload_periodically(app.state.model, settings.models.reload_interval_s))
        sampler = asyncio.create_task(app.state.ingest_sampler.run())
        flusher = asyncio.create_task(flush_periodically(app.state.metrics.tally))
        # Blend and search (tens of ms) run here, not in the loop's shared pool, where other short work (an online
        # store's calls, a listener's list computed on a miss) would queue behind them.
        # With several workers the threads are shared out: two workers with two threads each put four compute-heavy
        # threads on two cores, and every precomputed answer's p99 under a mixed load went from 8 to 11-17 ms.
        threads = max(1, SURFACE_THREADS // settings.workers)
        app.state.surface_threads = ThreadPoolExecutor(threads, thread_name_prefix="surfaces")
        app.state.surface_backlog = 0  # requests on or waiting for them (``settings.surface_backlog`` at most)
        try:
            yield
        finally:
            for task in (reloader, sampler, flusher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            app.state.metrics.tally.flush()
            if compactor is not None:
                compactor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await compactor
            await app.state.session_feed.settled()
            app.state.session_feed.close()
            app.state.surface_threads.shutdown()
            if owned:
                app.state.event_log.close()
            await app.state.store.aclose()

    otel = settings.opentelemetry
    app = PlaynextApp(
        title="playnext",
        version=playnext.__version__,
        description="Events in, personalized audio out.",
        lifespan=lifespan,
        telemetry={"tracing": otel, "metrics": otel, "logs": otel},
    )
    app.direct_http = not otel
    app.state = AppState()
    app.state.settings = settings
    app.state.keys = KeyStore(settings.keys_file, recheck_s=settings.keys_recheck_s)
    app.state.clock = Clock(max_skew=dt.timedelta(seconds=settings.max_clock_skew_s))
    app.state.event_log = event_log
    app.state.model = ServedModel(Registry(settings), prepare=prepare_search)  # search: 0.5 s at 131k titles
    app.state.store = open_store(settings)
    app.state.tombstones = Tombstones(settings.tombstones_file)
    app.state.session_feed = SessionFeed(app.state.store, app.state.tombstones.unburied,
                                         lambda exc: _sessions_not_updated(app.state.metrics, exc))  # fmt: skip
    app.state.lake_fallback = LakeFallback(settings)
    app.state.treatments = LiveTreatments(settings)
    # Home's bandit draws from one generator (requests run on the event loop's thread): seeding a new one from the
    # OS per request cost more than the draw itself.
    app.state.home_rng = np.random.default_rng()
    app.state.forget_lock = asyncio.Lock()
    app.state.pending_lists = {}  # surface computations in flight, shared by concurrent requests (api.lists)
    app.state.metrics = Metrics()
    app.state.metrics.watch(app.state)
    app.state.unlogged = surfaces.UnloggedAnswers(app.state.metrics.impressions_lost)
    app.state.ingest_sampler = IngestSampler(app.state.metrics)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_s)
    errors.install(app)
    # The hot routes are answered in front of FastAPI's stack (``api.front``); FastAPI's router keeps them too,
    # for the 405 a wrong method gets.
    app.front = events.routes + surfaces.routes + [NamedRoute("/metrics", _metrics, include_in_schema=False)]
    app.router.routes.extend(app.front)
    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(users.router)
    app.include_router(dashboard.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


class AppState(State):
    """``app.state`` with plain attributes. Starlette's ``State`` keeps them in a dictionary behind ``__getattr__``,
    a Python call for each of the ten reads a precomputed answer makes; here ``_state`` is the instance's own
    dictionary, so Starlette's code that reads it sees the same values."""

    __setattr__ = object.__setattr__  # type: ignore[assignment]
    __delattr__ = object.__delattr__  # type: ignore[assignment]

    def __init__(self) -> None:
        object.__setattr__(self, "_state", self.__dict__)


class PlaynextApp(FastAPI):
    """FastAPI behind the front door (``api.front``), which names, limits and times every request and answers the
    hot routes itself; FastAPI's own stack answers the rest."""

    front: list[Route]
    direct_http = False  # set when FastAPI's native OpenTelemetry is off (``create_app``)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Without OpenTelemetry (the default), an HTTP request goes straight to the middleware once it is built.
        FastAPI's and Starlette's ``__call__`` would only look, per request, for a root path playnext never sets
        and for a telemetry provider that is not used: in one process, 0.3-0.6 µs of a request (``app-hello``:
        6.95 → 6.33 µs, medians of five alternated passes)."""
        if scope["type"] == "http" and self.direct_http and (stack := self.middleware_stack) is not None:
            scope["app"] = self
            await stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        settings: Settings = self.state.settings
        return FrontDoor(super().build_middleware_stack(), self.front, self.state.metrics, settings.max_body_bytes)


def _one_thread_per_request() -> None:
    """A server answers many small requests at once: BLAS and torch splitting each of them over every core only
    adds contention (measured: next track's p99 at 8 connections). Batch jobs and training keep their threads."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if "torch" in sys.modules:  # loaded by a sequence model; an ingest-only server never pays for importing it
        sys.modules["torch"].set_num_threads(1)


def _sessions_not_updated(metrics: Metrics, exc: Exception) -> None:
    """The events are in the log; the live sessions miss those plays (next track leans on history)."""
    metrics.store_errors.labels("add_plays").inc()
    log.warning("live sessions not updated: %s", exc)


async def _metrics(request: Request) -> Response:
    """Prometheus text format; unauthenticated like /healthz (scrape it from inside the network)."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def compact_periodically(settings: Settings) -> None:
    """Fold sealed segments into the lake every ``compact_interval_s``, so served events reach SQL and the
    pipelines without an operator. Compaction is crash-safe, so being cancelled or killed mid-way is harmless;
    a failure is logged and retried at the next tick, never taken down with the server."""
    while True:
        await asyncio.sleep(settings.compact_interval_s)
        await asyncio.to_thread(compact_once, settings)


def compact_once(settings: Settings) -> None:
    """One background compaction (the server's, or with several workers their supervisor's); a failure is
    logged and left to the next tick."""
    try:
        compact(
            settings.log_dir,
            settings.lake_dir,
            segment_max_bytes=settings.segment_max_bytes,
            commit_bytes=settings.compact_commit_bytes,
            tombstones=Tombstones(settings.tombstones_file),
        )
    except Exception:
        log.exception("background compaction failed; retrying in %s s", settings.compact_interval_s)


async def reload_periodically(model: ServedModel, interval_s: float) -> None:
    """Pick up a promoted (or rolled back) version without a restart; loading runs off the event loop."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            if await asyncio.to_thread(model.refresh):
                _one_thread_per_request()
        except Exception:
            log.exception("checking for a new model version failed; retrying in %s s", interval_s)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's spec plus the msgspec event schemas, which FastAPI cannot see because routes read raw bodies."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    _, components = msgspec.json.schema_components([Event, IngestReport], ref_template="#/components/schemas/{name}")
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(components)
    schemas["Event"] = {
        "oneOf": [{"$ref": f"#/components/schemas/{t.__name__}"} for t in Event.__args__],  # type: ignore[attr-defined]
        "discriminator": {"propertyName": "type"},
    }
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    }
    spec["paths"].update(events.OPENAPI)
    spec["paths"].update(surfaces.OPENAPI)
    spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    app.openapi_schema = spec
    return spec
