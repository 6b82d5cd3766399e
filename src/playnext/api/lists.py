"""Lists for a request: precomputed when the online store has them, else computed within the latency budget,
else a fallback.

A miss (a listener the batch has not reached, a new model version, a new week) is computed off the event loop and
written back, so the next request finds it. If that takes longer than ``online.budget_ms`` the request is answered
from the fallback now and the computation goes on in the background; concurrent misses for the same listener share
one computation. A failing online store is a miss too, never an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from typing import Literal, TypeVar

from prometheus_client import Counter
from starlette.requests import Request

from playnext.experiments.treatment import CONTROL, Treatment
from playnext.models.registry import ModelVersion
from playnext.online.store import Found, OnlineStore, StoreUnavailable
from playnext.privacy.tombstones import Tombstones
from playnext.surfaces import precomputed
from playnext.surfaces.common import SurfaceList

log = logging.getLogger(__name__)

Source = Literal["precomputed", "computed", "fallback", "live"]
# What a stored value reads as: Home's lists, or the others' pages
Shown = TypeVar("Shown", list[SurfaceList], precomputed.Paged)
Read = Callable[[Found, ModelVersion, str, dt.date, Treatment], Shown]


def _compute_and_store(store: OnlineStore, version: ModelVersion, surface: str, user_id: str, day: dt.date,
                       errors: Counter, treatment: Treatment, tombstones: Tombstones,
                       read: Read[Shown]) -> Shown:  # fmt: skip
    lists = precomputed.compute(version, surface, user_id, day, treatment=treatment)
    value = precomputed.encode(version, surface, day, lists, treatment, user_id)
    try:
        # Not stored if the listener was forgotten since ``version`` was made: this process still holds it as it
        # was before the scrub (it reloads within ``models.reload_interval_s``), and the forget has deleted, or is
        # about to delete, every stored list of theirs.
        store.put_lists(surface, [(user_id, value)], skip=precomputed.forgotten_since_made(tombstones, version))
    except StoreUnavailable as exc:
        errors.labels("put_lists").inc()
        log.warning("could not store %s for %s: %s", surface, user_id, exc)
    return read(value, version, surface, day, treatment)  # as the next request will read it from the store


def _finished(pending: dict, key: tuple[str, ...], task: asyncio.Future) -> None:  # type: ignore[type-arg]
    pending.pop(key, None)
    if not task.cancelled() and task.exception() is not None:  # the request that waited has answered already
        log.error("computing %s for %s failed", key[1], key[2], exc_info=task.exception())


def stored_in_place(request: Request, version: ModelVersion, surface: str, user_id: str, day: dt.date,
                    read: Read[Shown], treatment: Treatment = CONTROL) -> Shown | None:  # fmt: skip
    """The listener's current stored lists, when the store answers in place (``OnlineStore.in_place``); None if it
    does not, has none or none current, or fails: then ``lists_for`` takes the request the long way.

    This is nearly every precomputed answer, and it needs none of what ``lists_for`` has for a miss, nor the check
    that the listener is in the model (a current value was made from this version for them, and a forget erases
    it): in one process, a Daily Mix request took 22.0-23.3 µs this way, against 23.4-24.5 through ``lists_for``
    after the listener check (the app called over ASGI in a loop, two runs of four passes each). The cost: a
    listener the model does not know reads the store once before being answered from popular items (Daily Mix:
    about 900 µs either way)."""
    store: OnlineStore = request.app.state.store
    if not store.in_place:
        return None
    try:
        return store.get_list_as(surface, user_id, lambda blob: read(blob, version, surface, day, treatment))
    except (LookupError, StoreUnavailable):
        return None


async def lists_for(
    request: Request, version: ModelVersion, surface: str, user_id: str, day: dt.date,
    fallback: Callable[[], Shown], read: Read[Shown], treatment: Treatment = CONTROL,
) -> tuple[Shown, Source]:  # fmt: skip
    """The long way, once ``stored_in_place`` found nothing. A listener the model does not know is answered
    ``fallback`` now ("live"): nothing is computed or stored for an arbitrary id. ``read``: how the surface's
    stored value reads (``precomputed.current``, or ``current_pages`` given the request's length)."""
    if version.data.user_row(user_id) < 0:
        return fallback(), "live"
    state = request.app.state
    store: OnlineStore = state.store
    try:
        if not store.in_place:  # an in-place store's list, ``stored_in_place`` has read
            with contextlib.suppress(LookupError):
                return read(await store.read_list(surface, user_id), version, surface, day, treatment), "precomputed"
        # none, or not current: a list written since, for this version or week, may be
        return read(await store.read_written_list(surface, user_id), version, surface, day, treatment), "precomputed"
    except LookupError:
        pass
    except StoreUnavailable as exc:
        state.metrics.store_errors.labels("get_list").inc()
        log.warning("online store unavailable, computing %s for %s: %s", surface, user_id, exc)
    pending: dict[tuple[str, str, str, str], asyncio.Future[Shown]] = state.pending_lists
    key = (version.id, surface, user_id, treatment.key(surface))
    task = pending.get(key)
    if task is None:
        errors = state.metrics.store_errors
        task = asyncio.ensure_future(
            asyncio.to_thread(
                _compute_and_store, store, version, surface, user_id, day, errors, treatment, state.tombstones, read
            )
        )
        pending[key] = task
        task.add_done_callback(lambda done: _finished(pending, key, done))
    try:
        return await asyncio.wait_for(asyncio.shield(task), state.settings.online.budget_ms / 1000), "computed"
    except TimeoutError:
        pass
    except Exception:  # a failing dependency degrades the answer, it does not fail it (logged in ``_finished``)
        pass
    return await asyncio.to_thread(fallback), "fallback"
