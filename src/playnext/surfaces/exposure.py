"""Exposure: every list a surface shows becomes ``impression`` events, so outcomes and rewards close the loop."""

from __future__ import annotations

import datetime as dt

from playnext.events.schema import Impression
from playnext.surfaces.common import SurfaceList


def impressions(shown: SurfaceList, user_ids: list[str], request_id: str, at: dt.datetime,
                variant: str | None = None) -> list[Impression]:  # fmt: skip
    """One impression per item and viewer. These surfaces are deterministic given the request, so every
    position was shown with probability 1: the propensity off-policy estimates need."""
    return [
        Impression(
            event_id=f"{request_id}-{n}-{pos}",
            user_id=user,
            ts=at,
            item_id=pick.item_id,
            item_type=pick.item_type,
            surface=shown.surface,
            position=pos,
            request_id=request_id,
            variant=variant,
            propensity=1.0,
        )
        for n, user in enumerate(user_ids)
        for pos, pick in enumerate(shown.items)
    ]
