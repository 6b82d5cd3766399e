"""Exposure: every list a surface shows becomes ``impression`` events, so outcomes and rewards close the loop.

An impression's ``event_id`` is made here, unique by construction: a random prefix drawn once per process and a
counter (``exposure_id``). The request id cannot serve, since a client may send its own ``X-Request-Id`` twice,
and a repeated id would make a second showing look like a retried duplicate of the first. Unique ids let the log
store impressions without a duplicate lookup (``EventLog.submit(fresh=True)``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os

from playnext.events.schema import ITEM_TYPES, Impression
from playnext.surfaces.common import Pick, SurfaceList
from playnext.surfaces.home import HomePage

_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count()


def exposure_id() -> str:
    """A process-unique id for one answer's impressions (64 random bits, then a counter)."""
    return f"x{_PREFIX}{next(_COUNTER):x}"


def _impression(event_id: str, user: str, pick: Pick, surface: str, position: int, request_id: str,
                at: dt.datetime, variant: str | None, propensity: float) -> Impression:  # fmt: skip
    # Cards that are not catalog items (a Daily Mix card) are logged as playlists, the nearest event item type.
    item_type = pick.item_type if pick.item_type in ITEM_TYPES else "playlist"
    return Impression(
        event_id=event_id, user_id=user, ts=at, item_id=pick.item_id, item_type=item_type, surface=surface,
        position=position, request_id=request_id, variant=variant, propensity=propensity,
    )  # fmt: skip


def impressions(
    shown: SurfaceList, user_ids: list[str], request_id: str, at: dt.datetime,
    variants: dict[str, str | None] | None = None, exposure: str | None = None,
) -> list[Impression]:  # fmt: skip
    """One impression per item and viewer, with the viewer's experiment variants. These surfaces are
    deterministic given the request, so every position was shown with probability 1: the propensity off-policy
    estimates need."""
    variants, exposure = variants or {}, exposure or exposure_id()
    return [
        _impression(f"{exposure}-{n}-{pos}", user, pick, shown.surface, pos, request_id, at, variants.get(user), 1.0)
        for n, user in enumerate(user_ids)
        for pos, pick in enumerate(shown.items)
    ]


def home_impressions(page: HomePage, user: str, request_id: str, at: dt.datetime,
                     variant: str | None = None, exposure: str | None = None) -> list[Impression]:  # fmt: skip
    """One impression per card, numbered down the page, under ``home/<shelf>`` with the bandit's probability of
    the shelf's position as its propensity."""
    cards = [(shelf, card) for shelf in page.shelves for card in shelf.items]
    exposure = exposure or exposure_id()
    return [
        _impression(f"{exposure}-{pos}", user, card, f"home/{shelf.id}", pos, request_id, at, variant, shelf.propensity)
        for pos, (shelf, card) in enumerate(cards)
    ]
