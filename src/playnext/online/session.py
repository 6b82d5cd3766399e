"""The live session: which ingested events feed it, and where a session starts.

Only plays and skips count (a save or a follow is not something the listener just heard), and only events the log
stored now: a retried batch must not put the same play in the session twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from playnext.events.schema import Event, Play, Skip
from playnext.online import store


def plays_of(events: Sequence[Event], stored: Sequence[bool]) -> list[store.Play]:
    return [
        store.Play(e.user_id, e.item_id, e.ts.timestamp(), isinstance(e, Skip))
        for e, new in zip(events, stored, strict=True)
        if new and isinstance(e, Play | Skip)
    ]


def current_session(plays: list[store.Play], gap_s: float, now: float) -> list[store.Play]:
    """The trailing plays with no gap longer than ``gap_s`` between them, nor between the last one and ``now``."""
    if not plays or now - plays[-1].ts > gap_s:
        return []
    start = len(plays) - 1
    while start > 0 and plays[start].ts - plays[start - 1].ts <= gap_s:
        start -= 1
    return plays[start:]
