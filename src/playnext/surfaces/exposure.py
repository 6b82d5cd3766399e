"""Exposure: every list a surface shows becomes ``impression`` events, so outcomes and rewards close the loop.

An impression's ``event_id`` is made here, unique by construction (``exposure_id``: ``ids.unique_id``, a random
prefix drawn once per process and a counter). The request id cannot serve, since a client may send its own
``X-Request-Id`` twice, and a repeated id would make a second showing look like a retried duplicate of the
first. Unique ids let the log store impressions without a duplicate lookup (``EventLog.submit_fresh``).

A shown list is handed to the log as one ``events.exposures.Exposure`` per viewer, not one impression per item
(and Daily Mix's mixes as one for the answer): compaction unfolds it into the very impression events (ids
included) that the lake and every reader see. The records are the server's own (a checked listener id, catalog
ids, configured labels), so they skip the per-event checks a client's events need.
"""

from __future__ import annotations

import datetime as dt
import functools

import msgspec

from playnext.events.exposures import Exposure
from playnext.ids import unique_id
from playnext.surfaces.home import HomePage
from playnext.surfaces.page import Page, logged_type


def exposure_id() -> str:
    """A process-unique id for one answer's impressions (64 random bits, then a counter)."""
    return unique_id("x")


def listener_impressions(lists: list[Page], user: str, request_id: str, variant: str | None, at: dt.datetime,
                         exposure: str) -> list[Exposure]:  # fmt: skip
    """The exposures of an answer showing one listener ``lists`` of one surface: Discover Weekly's one list, or
    Daily Mix's mixes as one line of several lists (``Exposure.lists``); none if no list has items."""
    if len(lists) == 1:
        return impressions(lists[0], [user], request_id, at, {user: variant}, exposure)
    sizes = [shown.size for shown in lists]
    if not any(sizes):
        return []
    ids, types = _joined([shown.ids for shown in lists]), _joined([shown.types for shown in lists])
    return [Exposure(request_id, lists[0].surface, variant, 1.0, f"{exposure}-0", user, at, msgspec.Raw(ids),
                     None if types == _tracks(sum(sizes)) else msgspec.Raw(types), lists=sizes)]  # fmt: skip


def _joined(arrays: list[bytes]) -> bytes:
    """JSON arrays (a page's ids or types) as one."""
    return b"[" + b",".join(array[1:-1] for array in arrays if array != b"[]") + b"]"


def impressions(
    shown: Page, user_ids: list[str], request_id: str, at: dt.datetime,
    variants: dict[str, str | None] | None = None, exposure: str | None = None,
) -> list[Exposure]:  # fmt: skip
    """One exposure per viewer, with the viewer's experiment variants; item ``p`` of viewer ``n`` becomes the
    impression ``<exposure>-<n>-<p>``. These surfaces are deterministic given the request, so every position
    was shown with probability 1: the propensity off-policy estimates need."""
    if not shown.size:
        return []
    variants, exposure = variants or {}, exposure or exposure_id()
    ids = msgspec.Raw(shown.ids)  # copied into the log's line as it is
    types = None if shown.types == _tracks(shown.size) else msgspec.Raw(shown.types)  # None: all tracks
    return [
        Exposure(request_id, shown.surface, variants.get(user), 1.0, f"{exposure}-{n}", user, at, ids, types)
        for n, user in enumerate(user_ids)
    ]  # fmt: skip


def home_impressions(page: HomePage, user: str, request_id: str, at: dt.datetime,
                     variant: str | None = None, exposure: str | None = None) -> list[Exposure]:  # fmt: skip
    """One exposure per shelf, its cards numbered down the page (impression ``<exposure>-<position>``), under
    ``home/<shelf>`` with the bandit's probability of the shelf's position as its propensity."""
    exposure = exposure or exposure_id()
    out, first = [], 0
    for shelf in page.shelves:
        if shelf.items:
            ids, types = [c.item_id for c in shelf.items], [logged_type(c.item_type) for c in shelf.items]
            out.append(Exposure(request_id, f"home/{shelf.id}", variant, shelf.propensity, exposure, user, at, ids,
                                None if all(t == "track" for t in types) else types, first))  # fmt: skip
            first += len(shelf.items)
    return out


@functools.cache
def _tracks(n: int) -> bytes:
    """``n`` items' types as a page holds them when every one is a track (``surfaces.page``)."""
    return msgspec.json.encode(["track"] * n)
