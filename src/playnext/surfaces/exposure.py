"""Exposure: every list a surface shows becomes ``impression`` events, so outcomes and rewards close the loop.

An impression's ``event_id`` is made here, unique by construction (``exposure_id``: ``ids.unique_id``, a random
prefix drawn once per process and a counter). The request id cannot serve, since a client may send its own
``X-Request-Id`` twice, and a repeated id would make a second showing look like a retried duplicate of the
first. Unique ids let the log store impressions without a duplicate lookup (``EventLog.submit_fresh``).

Impressions are built as ``ImpressionLine`` records, not ``events.schema.Impression``: every field is the server's
own (a checked listener id, catalog ids, configured labels), so the per-event printability check a client's
event needs would only re-check them, and at 30-60 impressions per answer building checked events cost about as
much as the rest of a precomputed answer. A line encodes to the very bytes an ``Impression`` does (a test pins
it), so the log, the lake and every reader see ordinary impressions.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from playnext.events.schema import ITEM_TYPES
from playnext.ids import unique_id
from playnext.surfaces.common import SurfaceList
from playnext.surfaces.home import HomePage


class ImpressionLine(msgspec.Struct, tag_field="type", tag="impression", frozen=True, gc=False):
    """``Impression``'s fields in its encoded order, without its client-input checks (see the module's docstring).
    Untracked by the garbage collector: thousands wait in the log's buffer at a time, and each collection walked
    them all (measured: a fifth of a Discover Weekly answer)."""

    request_id: str
    surface: str
    position: int
    variant: str | None
    propensity: float | None
    event_id: str
    user_id: str
    ts: dt.datetime
    item_id: str
    item_type: str
    country: None = None


def exposure_id() -> str:
    """A process-unique id for one answer's impressions (64 random bits, then a counter)."""
    return unique_id("x")


def _logged_type(item_type: str) -> str:
    # Cards that are not catalog items (a Daily Mix card) are logged as playlists, the nearest event item type.
    return item_type if item_type in ITEM_TYPES else "playlist"


def impressions(
    shown: SurfaceList, user_ids: list[str], request_id: str, at: dt.datetime,
    variants: dict[str, str | None] | None = None, exposure: str | None = None,
) -> list[ImpressionLine]:  # fmt: skip
    """One impression per item and viewer, with the viewer's experiment variants. These surfaces are
    deterministic given the request, so every position was shown with probability 1: the propensity off-policy
    estimates need."""
    variants, exposure, surface = variants or {}, exposure or exposure_id(), shown.surface
    return [
        ImpressionLine(request_id, surface, pos, variants.get(user), 1.0, f"{exposure}-{n}-{pos}", user, at,
                       pick.item_id, _logged_type(pick.item_type))
        for n, user in enumerate(user_ids)
        for pos, pick in enumerate(shown.items)
    ]  # fmt: skip


def home_impressions(page: HomePage, user: str, request_id: str, at: dt.datetime,
                     variant: str | None = None, exposure: str | None = None) -> list[ImpressionLine]:  # fmt: skip
    """One impression per card, numbered down the page, under ``home/<shelf>`` with the bandit's probability of
    the shelf's position as its propensity."""
    cards = [(f"home/{shelf.id}", shelf.propensity, card) for shelf in page.shelves for card in shelf.items]
    exposure = exposure or exposure_id()
    return [
        ImpressionLine(request_id, surface, pos, variant, propensity, f"{exposure}-{pos}", user, at, card.item_id,
                       _logged_type(card.item_type))
        for pos, (surface, propensity, card) in enumerate(cards)
    ]  # fmt: skip
