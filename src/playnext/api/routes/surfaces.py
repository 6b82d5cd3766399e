"""Surface routes: parse and validate, find or compute the lists, log what was shown, answer.

Every answer carries a request id, the listener's experiment variants (``experiments.assignment``), the model
version, a ``fallback`` flag, where the list came from (``source``: precomputed, computed, fallback or live) and a
reason per item; every shown list is handed to the event log as impressions, with those variants, before the answer
goes out (see ``_log`` for why it does not wait for their fsync). An unknown listener is a 200 with cold-start
content, computed on the spot and never stored (arbitrary ids must not fill the online store). Answers are encoded
by msgspec: FastAPI's own encoder cost more than the whole lookup of a precomputed list.

Precomputed lists and next track (about a millisecond) are answered on the event loop: a worker thread's hand-off
cost more than it freed (next track in one: a fifth fewer requests/s at 8 connections). Blend and search take
tens of milliseconds, so they run in worker threads, and the requests behind them do not wait that long. Next track
and Home compute on the loop, so they first ``take_turn``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import msgspec
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from playnext.api.errors import ApiError
from playnext.api.lean import JsonAnswer, LeanGet, Param, openapi_paths
from playnext.api.lists import lists_for, stored_in_place
from playnext.api.observability import request_id
from playnext.events.exposures import Exposure
from playnext.events.log import LogUnavailable
from playnext.events.schema import Country, Id
from playnext.experiments.treatment import Treatment
from playnext.ids import unique_id
from playnext.models.registry import ModelVersion, RegistryError
from playnext.online.session import current_session
from playnext.online.store import StoreUnavailable
from playnext.surfaces.answer import list_body, listener_answer, mixes_body
from playnext.surfaces.bandit import shelf_stats_from_lake
from playnext.surfaces.blend import MAX_MEMBERS, BlendError, blend
from playnext.surfaces.common import SurfaceList, popular_order
from playnext.surfaces.daily_mix import MAX_SIZE, SIZE, popular_mix
from playnext.surfaces.discover_weekly import LENGTH, discover_weekly
from playnext.surfaces.exposure import exposure_id, home_impressions, impressions, listener_impressions
from playnext.surfaces.home import home, list_as_shelf, shelf_as_list, shelves
from playnext.surfaces.next_track import next_tracks
from playnext.surfaces.page import Page, page_of
from playnext.surfaces.precomputed import HOME_SIZE, Paged, current, current_pages
from playnext.surfaces.search import search

log = logging.getLogger(__name__)
# Shown lists (exposures, about 1 KB each) waiting for the log's writer: 10,000 Discover Weekly answers, 1,250 Homes.
# It must hold what arrives within a round (``EventLog.fresh_interval_s``, 50 ms, plus a worker's 20 ms gather):
# at 1,000 Home's and Daily Mix's p99 at 32 connections went to 60 ms, every answer over it waiting for a round.
EXPOSURE_BACKLOG = 10_000
_encode = msgspec.json.Encoder().encode


def user_id_of(value: str) -> str:
    """A listener id from a path, checked like an event's ``user_id`` (422 otherwise)."""
    return _id(value, "user id")


_ID_LENGTH = range(Id.__metadata__[0].min_length, Id.__metadata__[0].max_length + 1)


def _id(value: str, what: str) -> str:
    if len(value) in _ID_LENGTH and value.isprintable():  # every request's: no error to word
        return value
    try:
        msgspec.convert(value, Id)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "invalid", f"{what}: {exc}") from None
    if not value.isprintable():
        raise ApiError(422, "invalid", f"{what} holds control or non-printable characters")
    return value


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return msgspec.convert(value, Country)
    except msgspec.ValidationError:
        raise ApiError(422, "invalid", "country must be an ISO 3166 code such as SE") from None


def _version(request: Request) -> ModelVersion:
    """The served version; routes check for none first and answer from ``_without_model`` then."""
    version = request.app.state.model.version
    assert version is not None
    return version


async def _treated(request: Request, user: str) -> tuple[ModelVersion, Treatment]:
    """The listener's experiment treatment and the model version it serves them: the served one unless their
    variant names another (loaded once, off the event loop). A version that cannot be loaded serves the default
    and is logged, since an experiment must not take the surface down."""
    state = request.app.state
    treatment: Treatment = state.treatments.of(user)
    version = _version(request)
    if treatment.model_version and treatment.model_version != version.id:
        try:
            version = await asyncio.to_thread(state.model.pinned, treatment.model_version)
        except RegistryError as exc:
            log.error("variant %s names model version %s, which cannot be served: %s", treatment.label,
                      treatment.model_version, exc)  # fmt: skip
    return version, treatment


async def _without_model(request: Request, surface: str, viewers: list[str], n: int, query: str = "") -> Response:
    """A 200 from the lake's most played items (search: catalog titles), flagged ``fallback``."""
    fallback = request.app.state.lake_fallback
    shown = await asyncio.to_thread(fallback.search, query, n) if query else await asyncio.to_thread(
        fallback.popular, surface, n)  # fmt: skip
    extra: dict[str, Any] = {"user_id": viewers[0] if len(viewers) == 1 else None}
    page = page_of(shown)
    if surface == "home":
        extra["shelves"] = [{"shelf": "popular", "title": "Popular right now", "position": 0, "propensity": 1.0,
                             "items": page.answer_items()}]  # fmt: skip
    body = await _shown(request, page, viewers, extra, "fallback")
    if surface == "daily-mix":
        return _json(mixes_body(viewers[0], None, "fallback", [{**body, "name": "Popular Mix", "mix": 1}]))
    return _json(body)


async def _off_loop(request: Request, compute: Callable[[], SurfaceList]) -> SurfaceList:
    """A surface that takes tens of milliseconds, on the app's surface threads (see the module's docstring); a 503
    once ``surface_backlog`` of them are under way or waiting."""
    state = request.app.state
    if state.surface_backlog >= state.settings.surface_backlog:
        raise ApiError(503, "busy", f"{state.surface_backlog} Blend and search requests are under way; retry shortly",
                       {"Retry-After": "1"})  # fmt: skip
    state.surface_backlog += 1  # only the event loop's thread counts: no lock
    try:
        return await asyncio.get_running_loop().run_in_executor(state.surface_threads, compute)
    finally:
        state.surface_backlog -= 1


async def take_turn() -> None:
    """Yield to the event loop once before computing on it. On uvloop, a request that arrived while others were
    computing otherwise started after requests that arrived later, about one in eight: a 1 ms handler at 8
    connections answered at 7.6 ms or at 15 ms (two rounds of the others' work), never between. With one yield
    every request waits one round (p99 9.7 ms). Next track's p99 at 8 connections went from 17-19 to 15 ms and
    Home's from 10.4 to 5.6 ms, in one slow run of the bench's client against one server per setting. The standard
    library's loop is fair without it, but slower for ingest (``api.app.SERVER``)."""
    await asyncio.sleep(0)


async def _log(request: Request, events: Sequence[Exposure] = (), ndjson: bytes = b"", count: int = 0) -> None:
    """Hand the impressions to the log's writer, which writes everything handed to it since its last round as one
    group commit, within 50 ms (a round); the answer does not wait for that fsync unless the writer is behind
    (``EXPOSURE_BACKLOG`` shown lists waiting), which bounds memory. Waiting on every fsync capped a precomputed
    surface at a few hundred requests/s at 8 connections. What it risks: a crash within one round of an answer
    loses that answer's impressions, at random, so analyses stay unbiased; a round the writer fails to write is
    counted and logged (``UnloggedAnswers``); client events are still acknowledged only once durable. A log that
    cannot be written is a 503 (a list shown but never logged would blind experiments and off-policy
    evaluation)."""
    event_log = request.app.state.event_log
    try:
        # Impression ids are unique by construction. ``ndjson``: ``count`` exposures encoded already.
        future = event_log.submit_fresh_encoded(ndjson, count) if ndjson else event_log.submit_fresh(events)
        if event_log.fresh_backlog() > EXPOSURE_BACKLOG or future.done():
            await asyncio.wrap_future(future)
        else:
            request.app.state.unlogged.answered(future)
    except LogUnavailable as exc:
        raise ApiError(503, "log_unavailable", f"the exposure log cannot be written: {exc}") from None


class UnloggedAnswers:
    """Answers that went out before their round of the log's writer was on disk, counted (the
    ``impressions_lost`` metric) and logged once if that round fails. One callback per round, not one per answer:
    with one per answer the writer's thread ran a few hundred callbacks a round (the GIL held meanwhile), and a
    failed round logged one error line per answer. Over HTTP the answers' cost did not change measurably."""

    def __init__(self, lost: Counter) -> None:
        self.lost = lost
        self._round: Future[None] | None = None
        self._answers = [0]  # the current round's, in a list its callback shares

    def answered(self, future: Future[None]) -> None:
        """One answer whose impressions ride on ``future``, a round the route saw not yet done. Counted before
        the callback is added, which runs at once if the round has finished since: an answer is missed only if
        its round fails between the route's check and the count below, a few bytecodes on the event loop."""
        if future is self._round:
            self._answers[0] += 1
            return
        self._round, self._answers = future, [1]
        future.add_done_callback(functools.partial(self._finished, self._answers))

    def _finished(self, answers: list[int], future: Future[None]) -> None:
        if future.exception() is not None:
            self.lost.inc(answers[0])
            log.error("a round of the exposure log failed: the impressions of %d answer(s) already given are lost: "
                      "%s", answers[0], future.exception())  # fmt: skip


def _json(body: dict[str, Any]) -> Response:
    return JsonAnswer(_encode(body))


class _Card(msgspec.Struct, gc=False):
    item_id: str
    item_type: str
    reason: str


def _request_id(request: Request, surface: str, source: str) -> str:
    """The id the middleware gave this request (also in ``X-Request-Id`` and the logs); counted per source."""
    request.app.state.metrics.answer(surface, source)
    return request_id.get() or unique_id()


def _variants(request: Request, viewers: list[str]) -> dict[str, str | None]:
    """Each viewer's experiment variants as one label ("experiment:variant" per layer), or None outside any."""
    treatments = request.app.state.treatments
    return {v: treatments.of(v).label for v in viewers}


async def _shown(request: Request, shown: Page, viewers: list[str], extra: dict[str, Any],
                 source: str, treatment: Treatment | None = None) -> dict[str, Any]:  # fmt: skip
    """The answer's body for one list, its impressions handed to the log. ``treatment``: the single viewer's, when
    the route has it already (assignment hashes per layer)."""
    request_id = _request_id(request, shown.surface, source)
    variants = {viewers[0]: treatment.label} if treatment is not None else _variants(request, viewers)
    await _log(request, impressions(shown, viewers, request_id, dt.datetime.now(dt.UTC), variants))
    variant = variants[viewers[0]] if len(viewers) == 1 else None
    return list_body(shown, request_id, variant, source, extra, variants if len(viewers) > 1 else None)


async def _listener_answer(request: Request, surface: str, user: str, model_version: str, paged: Paged, size: int,
                           source: str, treatment: Treatment) -> Response:  # fmt: skip
    """Discover Weekly's or Daily Mix's answer, all its lists' impressions handed to the log at once: filled in from
    the rendered answer (``surfaces.rendered``) when the value has one for this length (``current_pages`` then
    left the pages undecoded), else built from its pages. Both give the same bytes."""
    request_id = _request_id(request, surface, source)
    at, exposure, variant, rendered = dt.datetime.now(dt.UTC), exposure_id(), treatment.label, paged.rendered
    if paged.pages is None:
        assert rendered is not None
        body, lines = rendered.fill(request_id, variant, source, exposure, at)
        await _log(request, ndjson=lines, count=rendered.count)
        return JsonAnswer(body)
    lists = [shown.first(size) for shown in paged.pages]
    await _log(request, listener_impressions(lists, user, request_id, variant, at, exposure))
    return _json(listener_answer(surface, user, model_version, lists, request_id, variant, source))


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


async def get_discover_weekly(request: Request, user_id: str, n: int, country: str | None) -> Response:
    user, where = _id(user_id, "user id"), _country(country)
    if request.app.state.model.version is None:
        return await _without_model(request, "discover-weekly", [user], n)
    (version, treatment), day = await _treated(request, user), _today()

    def fallback() -> Paged:
        shown = discover_weekly(version, user, day, country=where, candidates=popular_order(version, where),
                                **treatment.of("discover-weekly"))  # fmt: skip
        shown.fallback = True
        return Paged([page_of(shown)])

    read = functools.partial(current_pages, size=n)
    stored = stored_in_place(request, version, "discover-weekly", user, day, read, treatment)
    paged, source = (stored, "precomputed") if stored is not None else await lists_for(
        request, version, "discover-weekly", user, day, fallback, read, treatment)  # fmt: skip
    return await _listener_answer(request, "discover-weekly", user, version.id, paged, n, source, treatment)


async def get_daily_mixes(request: Request, user_id: str, size: int, country: str | None) -> Response:
    user, where = _id(user_id, "user id"), _country(country)
    if request.app.state.model.version is None:
        return await _without_model(request, "daily-mix", [user], size)
    (version, treatment), day = await _treated(request, user), _today()

    def popular() -> Paged:
        return Paged([page_of(popular_mix(version, user, day, country=where))])

    read = functools.partial(current_pages, size=size)
    stored = stored_in_place(request, version, "daily-mix", user, day, read, treatment)
    paged, source = (stored, "precomputed") if stored is not None else await lists_for(
        request, version, "daily-mix", user, day, popular, read, treatment)  # fmt: skip
    if paged.pages is not None and not paged.pages:  # a stored value without mixes (which is never rendered)
        paged = popular()
    return await _listener_answer(request, "daily-mix", user, version.id, paged, size, source, treatment)


async def get_home(request: Request, user_id: str, size: int, country: str | None) -> Response:
    user, where = _id(user_id, "user id"), _country(country)
    if request.app.state.model.version is None:
        return await _without_model(request, "home", [user], size)
    await take_turn()
    (version, treatment), day = await _treated(request, user), _today()
    state = request.app.state
    stats = version.derived.get("shelf_stats")  # learned again for each model version (variants' too)
    if stats is None:
        stats = await asyncio.to_thread(version.derive, "shelf_stats",
                                        lambda: shelf_stats_from_lake(state.settings, version))  # fmt: skip

    def popular_shelves() -> list[SurfaceList]:
        found = shelves(version, user, size=HOME_SIZE, country=where, candidates=popular_order(version, where))
        return [shelf_as_list(shelf, version.id) for shelf in found.values()]

    found = stored_in_place(request, version, "home", user, day, current, treatment)
    stored, source = (found, "precomputed") if found is not None else await lists_for(
        request, version, "home", user, day, popular_shelves, current, treatment)  # fmt: skip
    available = {shelf.id: shelf for shelf in map(list_as_shelf, stored)}
    page = home(version, user, stats, state.home_rng, size=size, available=available)
    request_id = _request_id(request, "home", source)
    variant = treatment.label
    await _log(request, home_impressions(page, user, request_id, dt.datetime.now(dt.UTC), variant))
    return _json({
        "request_id": request_id, "surface": "home", "user_id": user, "variant": variant,
        "model_version": page.model_version, "fallback": page.fallback or source == "fallback", "source": source,
        "segment": page.segment,
        "shelves": [{"shelf": s.id, "title": s.title, "position": n, "propensity": round(s.propensity, 4),
                     "items": [_Card(c.item_id, c.item_type, c.reason) for c in s.items]}
                    for n, s in enumerate(page.shelves)],
    })  # fmt: skip


async def get_next(
    request: Request, user_id: str, track: str, recent: str | None, n: int, country: str | None
) -> Response:
    user, playing, where = _id(user_id, "user id"), _id(track, "track"), _country(country)
    if request.app.state.model.version is None:
        return await _without_model(request, "next-track", [user], n)
    await take_turn()
    version, treatment = await _treated(request, user)
    never: list[str] = []
    if recent is not None:
        session = [_id(t, "recent track") for t in recent.split(",") if t][:200]
    else:
        session, never = await _live_session(request, user)
    shown = page_of(next_tracks(version, user, playing, session, n=n, country=where, never=never))
    return _json(await _shown(request, shown, [user], {"user_id": user, "session": len(session)}, "live",
                              treatment))  # fmt: skip


async def _live_session(request: Request, user: str) -> tuple[list[str], list[str]]:
    """(the session's plays, oldest first; every recent play and skip) from the online store, or nothing when the
    store is down: next track then works from the listener's history alone."""
    settings, store = request.app.state.settings, request.app.state.store
    await request.app.state.session_feed.settled()  # every acknowledged play is in the session
    try:
        plays = await store.read_recent_plays(user, settings.online.recent_plays)
    except StoreUnavailable as exc:
        request.app.state.metrics.store_errors.labels("recent_plays").inc()
        log.warning("online store unavailable, next track without the live session: %s", exc)
        return [], []
    session = current_session(plays, settings.online.session_gap_s, time.time())
    return [p.item_id for p in session if not p.skipped], [p.item_id for p in plays]


async def get_search(request: Request, q: str, user: str | None, n: int) -> Response:
    if not q.strip() or not q.isprintable():
        raise ApiError(422, "invalid", "q must be printable text")
    listener = _id(user, "user id") if user else None
    if request.app.state.model.version is None:
        return await _without_model(request, "search", [listener] if listener else [], n, query=q.strip())
    version, treatment = await _treated(request, listener) if listener else (_version(request), None)
    shown = await _off_loop(request, functools.partial(search, version, q.strip(), listener, n=n))
    viewers = [listener] if listener else []
    return _json(await _shown(request, page_of(shown), viewers, {"user_id": listener}, "live", treatment))


async def get_blend(request: Request, users: str, n: int) -> Response:
    members = [_id(u, "user id") for u in users.split(",") if u]
    if len(members) > MAX_MEMBERS:
        raise ApiError(422, "invalid", f"a Blend has at most {MAX_MEMBERS} listeners, got {len(members)}")
    if request.app.state.model.version is None:
        return await _without_model(request, "blend", list(dict.fromkeys(members)), n)
    try:
        shown = await _off_loop(request, functools.partial(blend, _version(request), members, n=n))
    except BlendError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    viewers = list(dict.fromkeys(members))
    return _json(await _shown(request, page_of(shown), viewers, {"users": viewers}, "live"))


_COUNTRY = Param("country", default=None, max_length=8, description="ISO 3166 code: the segment of new listeners")
ROUTES = [
    LeanGet("/v1/users/{user_id}/home", get_home, "Shelves of cards, ordered by a contextual bandit",
            [Param("size", int, HOME_SIZE, 1, HOME_SIZE, description="Cards per shelf"), _COUNTRY]),
    LeanGet("/v1/users/{user_id}/discover-weekly", get_discover_weekly, "30 tracks never played, new each ISO week",
            [Param("n", int, LENGTH, 1, LENGTH), _COUNTRY]),
    LeanGet("/v1/users/{user_id}/daily-mixes", get_daily_mixes, "Up to 6 mixes of the listener's tastes",
            [Param("size", int, SIZE, 1, MAX_SIZE, description="Tracks per mix"), _COUNTRY]),
    LeanGet("/v1/users/{user_id}/next", get_next, "What to play after the current track", [
        Param("track", max_length=128, description="The track playing now"),
        Param("recent", default=None, max_length=200 * 130,
              description="Comma-separated tracks of this session, oldest first; default: the live session"),
        Param("n", int, 20, 1, 100), _COUNTRY,
    ]),
    LeanGet("/v1/search", get_search, "Typo-tolerant catalog search, re-ranked by the listener's taste",
            [Param("q", max_length=200), Param("user", default=None, max_length=128), Param("n", int, 20, 1, 100)]),
    LeanGet("/v1/blend", get_blend, "One playlist for 2-10 listeners, with their taste match",
            [Param("users", max_length=11 * 129, description="Comma-separated listener ids"),
             Param("n", int, 50, 1, 200)]),
]  # fmt: skip
routes = [r.route() for r in ROUTES]
OPENAPI = openapi_paths(ROUTES)
