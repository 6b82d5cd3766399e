"""``sessions``: listening split where the listener paused longer than ``session_gap_minutes``.

A pause is measured from the end of the previous item (its start plus what was played), not its start, so a
long podcast episode does not split its own session.
"""

from __future__ import annotations

import datetime as dt
import math

import ibis

from playnext.config import PipelineSettings
from playnext.pipelines.inputs import Delta, Inputs
from playnext.pipelines.tables.common import LISTENING, count_if, seconds, total


def _numbered(events: ibis.Table, p: PipelineSettings) -> ibis.Table:
    """Plays and skips with ``session_no``, each listener's running count of session starts."""
    e = events.filter(events.type.isin(LISTENING))
    e = e.mutate(start_s=e.ts_s, end_s=e.ts_s + e.ms_played.fill_null(0).cast("float64") / 1000.0)
    order = ibis.window(group_by=e.user_id, order_by=[e.ts, e.event_id])
    e = e.mutate(prev_end=e.end_s.lag().over(order))
    e = e.mutate(starts=(e.prev_end.isnull() | (e.start_s - e.prev_end > p.session_gap_minutes * 60.0)).ifelse(1, 0))
    running = ibis.cumulative_window(group_by=e.user_id, order_by=[e.ts, e.event_id])
    return e.mutate(session_no=e.starts.sum().over(running)).drop("starts", "prev_end")


def _session_id(user_id: ibis.StringValue, start_s: ibis.NumericValue) -> ibis.StringValue:
    return user_id.concat("-", start_s.cast("int64").cast("string"))


def session_events(events: ibis.Table, p: PipelineSettings) -> ibis.Table:
    """Each play or skip with its ``session_id`` and 1-based ``position`` in the session."""
    e = _numbered(events, p)
    session = [e.user_id, e.session_no]
    e = e.mutate(
        session_start_s=e.start_s.min().over(ibis.window(group_by=session)),
        position=ibis.row_number().over(ibis.window(group_by=session, order_by=[e.ts, e.event_id])),
    )
    return e.mutate(session_id=_session_id(e.user_id, e.session_start_s))


def sessions(inputs: Inputs, p: PipelineSettings) -> ibis.Table:
    return _sessions(inputs.events, p)


def sessions_incremental(inputs: Inputs, previous: ibis.Table, delta: Delta, p: PipelineSettings) -> ibis.Table:
    """Re-split only what new events can change. A session that ended more than a gap before ``since`` (the
    earliest new event) is closed: no new event can join it. For each listener, everything from the earlier of
    ``since`` and the start of their earliest still-open session is split again. Either point is a session start
    in the full history too (before it, every session of theirs is closed), so the re-split matches a full
    build."""
    gap = p.session_gap_minutes * 60.0
    since = float(math.floor(delta.since.timestamp()))  # whole seconds, as ``seconds`` gives
    prev = previous.mutate(start_s=seconds(previous.start), end_s=seconds(previous.start) + previous.duration_s)
    still_open = prev.filter(prev.end_s > since - gap)
    redo_from = still_open.group_by("user_id").aggregate(redo_s=ibis.least(still_open.start_s.min(), since))
    earliest = redo_from.redo_s.min().to_pyarrow().as_py()
    floor = min(since, earliest) if earliest is not None else since
    events = inputs.events.filter(inputs.events.ts >= ibis.literal(dt.datetime.fromtimestamp(floor, dt.UTC)))
    joined = events.left_join(redo_from, "user_id")
    events = joined.filter(joined.ts_s >= joined.redo_s.fill_null(since)).select(*events.columns)
    kept = prev.left_join(redo_from, "user_id")
    kept = kept.filter(kept.start_s < kept.redo_s.fill_null(since)).select(*previous.columns)
    return kept.union(_sessions(events, p).select(*previous.columns), distinct=False)


def _sessions(events: ibis.Table, p: PipelineSettings) -> ibis.Table:
    e = _numbered(events, p)
    s = e.group_by(["user_id", "session_no"]).aggregate(
        start=e.ts.min(),
        start_s=e.start_s.min(),
        end_s=e.end_s.max(),
        items=e.count().cast("int64"),
        skips=count_if(e, e.type == "skip"),
        tracks=count_if(e, e.item_type == "track"),
        episodes=count_if(e, e.item_type == "episode"),
        audiobooks=count_if(e, e.item_type == "audiobook"),
        ms_played=total(e.ms_played),
    )
    return s.select(
        session_id=_session_id(s.user_id, s.start_s),
        user_id=s.user_id,
        start=s.start,
        duration_s=(s.end_s - s.start_s),
        items=s["items"],
        skips=s.skips,
        skip_rate=s.skips.cast("float64") / s["items"].cast("float64"),
        ms_played=s.ms_played,
        content_type=ibis.cases(
            (s.tracks == s["items"], "music"),
            (s.episodes == s["items"], "podcast"),
            (s.audiobooks == s["items"], "audiobook"),
            else_="mixed",
        ),
    )
