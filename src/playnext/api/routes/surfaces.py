"""Surface routes: parse and validate, ask the served model version, log what was shown, answer.

Every answer carries a request id, the experiment variant (none until experiments exist), the model version, a
``fallback`` flag and a reason per item; every shown list is written to the event log as impressions before the
answer goes out, like any acknowledged event. An unknown listener is a 200 with cold-start content.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import msgspec
import numpy as np
from fastapi import APIRouter, Depends, Query, Request

from playnext.api.auth import require_scope
from playnext.api.errors import ApiError
from playnext.events.log import LogUnavailable
from playnext.events.schema import Country, Id
from playnext.models.registry import ModelVersion
from playnext.surfaces.bandit import shelf_stats_from_lake
from playnext.surfaces.blend import MAX_MEMBERS, BlendError, blend
from playnext.surfaces.common import SurfaceList
from playnext.surfaces.daily_mix import daily_mixes
from playnext.surfaces.discover_weekly import discover_weekly
from playnext.surfaces.exposure import home_impressions, impressions
from playnext.surfaces.home import home
from playnext.surfaces.next_track import next_tracks
from playnext.surfaces.search import search

router = APIRouter(dependencies=[Depends(require_scope("read"))])


def _id(value: str, what: str) -> str:
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
    version = request.app.state.model.version
    if version is None:
        raise ApiError(503, "no_model", "no model version is served yet: run `playnext train --promote`")
    return version


async def _log(request: Request, events: list) -> None:  # type: ignore[type-arg]
    """Impressions are acknowledged like any event: on disk before the answer goes out."""
    try:
        await asyncio.wrap_future(request.app.state.event_log.submit(events))
    except LogUnavailable as exc:
        raise ApiError(503, "log_unavailable", f"the exposure log cannot be written: {exc}") from None


async def _answer(request: Request, shown: SurfaceList, viewers: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    request_id = uuid.uuid4().hex
    now = dt.datetime.now(dt.UTC)
    await _log(request, impressions(shown, viewers, request_id, now))
    return {
        "request_id": request_id, "surface": shown.surface, "variant": None, "model_version": shown.model_version,
        "fallback": shown.fallback, **extra, **shown.meta,
        "items": [{"position": pos, "item_id": p.item_id, "item_type": p.item_type, "score": round(p.score, 6),
                   "reason": p.reason, **({"serves": list(p.serves)} if p.serves else {})}
                  for pos, p in enumerate(shown.items)],
    }  # fmt: skip


@router.get("/v1/users/{user_id}/discover-weekly", summary="30 tracks never played, new each ISO week")
async def get_discover_weekly(
    request: Request, user_id: str, n: int = Query(30, ge=1, le=100), country: str | None = None
) -> dict[str, Any]:
    user = _id(user_id, "user id")
    shown = discover_weekly(_version(request), user, dt.datetime.now(dt.UTC).date(), n=n, country=_country(country))
    return await _answer(request, shown, [user], {"user_id": user})


@router.get("/v1/users/{user_id}/next", summary="What to play after the current track")
async def get_next(
    request: Request, user_id: str, track: str = Query(..., description="The track playing now"),
    recent: str = Query("", description="Comma-separated tracks of this session, oldest first"),
    n: int = Query(20, ge=1, le=100), country: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    user, current = _id(user_id, "user id"), _id(track, "track")
    session = [_id(t, "recent track") for t in recent.split(",") if t][:200]
    shown = next_tracks(_version(request), user, current, session, n=n, country=_country(country))
    return await _answer(request, shown, [user], {"user_id": user})


@router.get("/v1/users/{user_id}/home", summary="Shelves of cards, ordered by a contextual bandit")
async def get_home(
    request: Request, user_id: str, size: int = Query(10, ge=1, le=50), country: str | None = None
) -> dict[str, Any]:
    user = _id(user_id, "user id")
    version = _version(request)
    state = request.app.state
    if getattr(state, "shelf_stats_for", None) != version.id:  # learned again for each model version
        state.shelf_stats = await asyncio.to_thread(shelf_stats_from_lake, state.settings, version)
        state.shelf_stats_for = version.id
    page = home(version, user, state.shelf_stats, np.random.default_rng(), size=size, country=_country(country))
    request_id = uuid.uuid4().hex
    now = dt.datetime.now(dt.UTC)
    events = home_impressions(page, user, request_id, now)
    await _log(request, events)
    return {
        "request_id": request_id, "surface": "home", "user_id": user, "variant": None,
        "model_version": page.model_version, "fallback": page.fallback, "segment": page.segment,
        "shelves": [{"shelf": s.id, "title": s.title, "position": n, "propensity": round(s.propensity, 4),
                     "items": [{"item_id": c.item_id, "item_type": c.item_type, "reason": c.reason}
                               for c in s.items]} for n, s in enumerate(page.shelves)],
    }  # fmt: skip


@router.get("/v1/users/{user_id}/daily-mixes", summary="Up to 6 mixes of the listener's tastes")
async def get_daily_mixes(
    request: Request, user_id: str, size: int = Query(20, ge=1, le=100), country: str | None = None
) -> dict[str, Any]:
    user = _id(user_id, "user id")
    version = _version(request)
    mixes = daily_mixes(version, user, size=size)
    if not mixes:  # no taste to split yet: one mix of what is popular in the listener's country
        mixes = [discover_weekly(version, user, dt.datetime.now(dt.UTC).date(), n=size, country=_country(country))]
        mixes[0].surface, mixes[0].meta = "daily-mix", {"name": "Popular Mix", "mix": 1, "genre": ""}
    answers = [await _answer(request, mix, [user], {"user_id": user}) for mix in mixes]
    return {"user_id": user, "model_version": version.id, "fallback": mixes[0].fallback, "mixes": answers}


@router.get("/v1/search", summary="Typo-tolerant catalog search, re-ranked by the listener's taste")
async def get_search(
    request: Request, q: str = Query(..., min_length=1, max_length=200), user: str | None = None,
    n: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:  # fmt: skip
    if not q.strip() or not q.isprintable():
        raise ApiError(422, "invalid", "q must be printable text")
    listener = _id(user, "user id") if user else None
    shown = search(_version(request), q.strip(), listener, n=n)
    return await _answer(request, shown, [listener] if listener else [], {"user_id": listener})


@router.get("/v1/blend", summary="One playlist for 2-10 listeners, with their taste match")
async def get_blend(
    request: Request, users: str = Query(..., description="Comma-separated listener ids"),
    n: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:  # fmt: skip
    members = [_id(u, "user id") for u in users.split(",") if u]
    if len(members) > MAX_MEMBERS:
        raise ApiError(422, "invalid", f"a Blend has at most {MAX_MEMBERS} listeners, got {len(members)}")
    try:
        shown = blend(_version(request), members, n=n)
    except BlendError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    return await _answer(request, shown, list(dict.fromkeys(members)), {"users": list(dict.fromkeys(members))})
