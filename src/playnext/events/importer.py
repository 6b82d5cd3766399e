"""``playnext events import``: files through the same validation, dedup and durable log as the HTTP API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from playnext.events.schema import Event
from playnext.events.validation import Clock, validate
from playnext.privacy.tombstones import Tombstones, refuse_forgotten
from playnext.records import RejectedLines, read_chunks

# Where validated events go: the local log's ``append`` or a ``CollectorClient``. Per event it answers True
# (stored), False (a duplicate) or a reason the receiver rejected it for.
Sink = Callable[[list[Event]], list[bool] | list[bool | str]]


@dataclass
class ImportReport:
    path: Path
    accepted: int = 0
    duplicates: int = 0
    rejected: RejectedLines = field(default_factory=RejectedLines)


def import_events(
    path: Path,
    sink: Sink,
    clock: Clock,
    *,
    fmt: str | None = None,
    chunk_size: int = 10_000,
    on_progress: Callable[[int], None] | None = None,
    tombstones: Tombstones | None = None,
) -> ImportReport:
    """``tombstones``: listeners whose past events are refused (the server applies its own to what it gets)."""
    report = ImportReport(path=path)
    for chunk in read_chunks(path, fmt, chunk_size):
        for line, reason in chunk.errors:
            report.rejected.add(line, reason)
        events, lines, rejections = validate(chunk.records, clock, indexes=chunk.lines)
        if tombstones is not None:
            events, lines, refused = refuse_forgotten(events, lines, tombstones)
            rejections += refused
        for r in rejections:
            report.rejected.add(r.index, r.reason)
        if events:
            for line, verdict in zip(lines, sink(events), strict=True):
                if verdict is True:
                    report.accepted += 1
                elif verdict is False:
                    report.duplicates += 1
                else:
                    report.rejected.add(line, verdict)
        if on_progress:
            on_progress(chunk.bytes_read)
    report.rejected.shown.sort()
    return report
