"""Turning untrusted records into events, one verdict per record.

HTTP bodies and import files share this, so a record is judged the same way whichever door it comes through.
A bad record never spoils its batch: it gets its index and a reason, and the good ones go on to the log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from playnext.events.schema import BATCH_DECODER, EVENT_DECODER, Event

_MAX_REASON = 300


class Rejection(msgspec.Struct, frozen=True):
    index: int  # position in the batch (0-based), or line number (1-based) for files
    reason: str
    event_id: str | None = None


class BadBody(ValueError):
    """The body as a whole is not JSON / NDJSON; nothing in it can be judged record by record."""


class _MaybeId(msgspec.Struct):
    event_id: Any = None


_ID_PEEK = msgspec.json.Decoder(_MaybeId)


def decode_whole(body: bytes, clock: Clock) -> list[Event] | None:
    """The fast path for a JSON array body in which every event is good: one decode call for the batch.

    None when anything in it is off; the caller then judges record by record, to name each bad one.
    """
    try:
        events = BATCH_DECODER.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None
    latest = clock.latest()
    if not events or any(e.ts > latest for e in events):
        return None
    return events


def split_body(body: bytes, ndjson: bool) -> list[msgspec.Raw | bytes]:
    """Records of a JSON array or NDJSON body, still undecoded, so each can fail on its own."""
    if ndjson:
        return [line for line in body.split(b"\n") if line.strip()]
    try:
        records = msgspec.json.decode(body, type=list[msgspec.Raw])
    except msgspec.ValidationError as exc:
        raise BadBody(f"expected a JSON array of events: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadBody(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadBody("the body is nested too deeply") from None
    return records


@dataclass(frozen=True)
class Clock:
    """What "too far in the future" means; an object so tests can pin it."""

    max_skew: dt.timedelta

    def latest(self) -> dt.datetime:
        """The latest acceptable event time, computed once per batch."""
        return dt.datetime.now(dt.UTC) + self.max_skew


def _short(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _peek_id(raw: msgspec.Raw | bytes | dict[str, Any]) -> str | None:
    try:
        value = raw.get("event_id") if isinstance(raw, dict) else _ID_PEEK.decode(raw).event_id
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    return value[:128] if isinstance(value, str) else None


def _lenient(record: dict[str, Any]) -> dict[str, Any]:
    """What the strict decoder refuses but means the same: ``null`` for a field the type lacks (a row of the
    lake's wide table exported as JSON), and ISO 8601 times with an offset but not in RFC 3339's exact form
    (``2026-10-01 00:00:32.95+00``, as DuckDB and PostgreSQL print them)."""
    out = {k: v for k, v in record.items() if v not in (None, "")}
    ts = out.get("ts")
    if isinstance(ts, str):
        try:
            parsed = dt.datetime.fromisoformat(ts)
        except ValueError:
            return out  # the strict error names it
        if parsed.tzinfo is not None:
            out["ts"] = parsed
    return out


def _decode(raw: msgspec.Raw | bytes | dict[str, Any]) -> Event:
    if isinstance(raw, dict):
        # Rows from CSV and Parquet: empty cells are absent fields, and "1200" may be an int.
        return msgspec.convert(_lenient(raw), Event, strict=False)
    try:
        return EVENT_DECODER.decode(raw)
    except msgspec.ValidationError as strict_error:
        record = msgspec.json.decode(raw)
        if not isinstance(record, dict):
            raise
        try:
            return msgspec.convert(_lenient(record), Event)
        except msgspec.ValidationError:
            raise strict_error from None


def validate(
    records: Iterable[msgspec.Raw | bytes | dict[str, Any]],
    clock: Clock,
    *,
    first_index: int = 0,
    indexes: Iterable[int] | None = None,
) -> tuple[list[Event], list[int], list[Rejection]]:
    """Return the good events with their indexes, and a rejection for each bad record."""
    events: list[Event] = []
    kept: list[int] = []
    rejected: list[Rejection] = []
    latest = clock.latest()
    numbering = iter(indexes) if indexes is not None else None
    for offset, raw in enumerate(records):
        index = next(numbering) if numbering is not None else first_index + offset
        try:
            event = _decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            rejected.append(Rejection(index=index, reason=_short(str(exc)), event_id=_peek_id(raw)))
            continue
        except RecursionError:
            rejected.append(Rejection(index=index, reason="the record is nested too deeply"))
            continue
        if event.ts > latest:
            rejected.append(
                Rejection(
                    index=index,
                    reason=f"ts {event.ts.isoformat()} is more than {clock.max_skew} in the future",
                    event_id=event.event_id,
                )
            )
            continue
        events.append(event)
        kept.append(index)
    return events, kept, rejected


class IngestReport(msgspec.Struct):
    """What happened to each record of a batch; the HTTP answer and the importer summary."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    accepted_ids: list[str] = msgspec.field(default_factory=list)
    duplicate_ids: list[str] = msgspec.field(default_factory=list)
    rejections: list[Rejection] = msgspec.field(default_factory=list)

    def add(self, events: list[Event], stored: list[bool], rejections: list[Rejection]) -> None:
        for event, is_new in zip(events, stored, strict=True):
            if is_new:
                self.accepted_ids.append(event.event_id)
            else:
                self.duplicate_ids.append(event.event_id)
        self.accepted = len(self.accepted_ids)
        self.duplicates = len(self.duplicate_ids)
        self.rejections.extend(rejections)
        self.rejected = len(self.rejections)
