"""Tombstones: the listeners whose data was deleted on request, and from when.

Kept as BLAKE2b digests of the listener id with the time of the request, never the id itself: the list of who
asked to be forgotten must not become personal data of its own. Events of a tombstoned listener stamped at or
before that time are refused at ingest and dropped at compaction, so neither a retried upload, a replayed export
nor a log segment written by a process that had not heard of the deletion can bring them back; later events
(a listener who came back) are new data.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from pathlib import Path

import msgspec
import numpy as np

from playnext.durable import ReadWhenChanged, atomic_write, file_lock
from playnext.events.schema import Event
from playnext.events.validation import Rejection
from playnext.online.store import Play


def digest(user_id: str) -> str:
    return hashlib.blake2b(user_id.encode(), digest_size=16, person=b"playnext-forget").hexdigest()


# What a forgotten listener's id becomes in a scrubbed model version. It starts with a NUL, which no listener id
# can hold (ids are printable), so it can never be asked for nor be taken for somebody's, and the batch can tell
# the row is nobody's and store no lists for it.
PLACEHOLDER_PREFIX = "\x00forgotten-"


def placeholder_id() -> str:
    return f"{PLACEHOLDER_PREFIX}{secrets.token_hex(8)}"


def placeholders(user_ids: np.ndarray) -> np.ndarray:
    """Which of ``user_ids`` (a model version's listeners) are scrubbed rows."""
    return np.char.startswith(user_ids.astype(str), PLACEHOLDER_PREFIX)


class _File(msgspec.Struct):
    forgotten: dict[str, float] = {}  # digest → seconds since the epoch of the request


class Tombstones:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._live = ReadWhenChanged(self.path, lambda raw: msgspec.json.decode(raw, type=_File).forgotten, dict)

    def add(self, user_id: str, at: float | None = None) -> float:
        """Record the deletion request; returns its time. A listener who came back and asks again moves the
        tombstone forward: everything up to the newest request is buried."""
        with file_lock(self.path.with_name(f".{self.path.name}.lock")):
            current = self._read()
            key = digest(user_id)
            when = max(current.forgotten.get(key, 0.0), time.time() if at is None else at)
            current.forgotten[key] = when
            atomic_write(self.path, msgspec.json.encode(current))
        return when

    def forgotten_at(self) -> dict[str, float]:
        """Every tombstone; re-read only when the file changed (it is consulted on every ingest batch)."""
        return self._live.get()

    def forgotten_since(self, user_ids: list[str], since: float) -> set[str]:
        """Those of ``user_ids`` who asked to be forgotten at or after ``since``, a model version's creation: what
        that version holds of them (a server's copy in memory not yet reloaded, a batch job's) is their deleted
        past, and no list computed from it may be stored."""
        forgotten = self.forgotten_at()
        if not forgotten:
            return set()
        return {u for u in user_ids if forgotten.get(digest(u), -math.inf) >= since}

    def unburied(self, plays: list[Play]) -> list[Play]:
        """The plays that are not of a deleted past, against one reading of the tombstones."""
        forgotten = self.forgotten_at()
        if not forgotten:
            return plays
        return [p for p in plays if forgotten.get(digest(p.user_id), -math.inf) < p.ts]

    def buried(self, user_id: str, ts: float) -> bool:
        """Whether an event of ``user_id`` at ``ts`` belongs to a deleted past."""
        when = self.forgotten_at().get(digest(user_id))
        return when is not None and ts <= when

    def _read(self) -> _File:
        if not self.path.exists():
            return _File()
        return msgspec.json.decode(self.path.read_bytes(), type=_File)


REFUSAL = "the listener's data was deleted on request; events from before that are not accepted"


def refuse_forgotten(
    events: list[Event], indexes: list[int], tombstones: Tombstones
) -> tuple[list[Event], list[int], list[Rejection]]:
    """Split a validated batch into the events to store and rejections for the buried ones (free when no
    listener was ever forgotten)."""
    if not tombstones.forgotten_at():
        return events, indexes, []
    kept, kept_at, refused = [], [], []
    for event, index in zip(events, indexes, strict=True):
        if tombstones.buried(event.user_id, event.ts.timestamp()):
            refused.append(Rejection(index=index, reason=REFUSAL, event_id=event.event_id))
        else:
            kept.append(event)
            kept_at.append(index)
    return kept, kept_at, refused
