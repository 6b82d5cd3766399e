"""Building validated events and reading back what a log directory holds, for log and compaction tests."""

from __future__ import annotations

from pathlib import Path

import msgspec

from playnext.events import framing
from playnext.events.log import frame_event_ids, list_segments
from playnext.events.schema import EVENT_DECODER, Event
from tests.conftest import event


def events(n: int, prefix: str = "e", **fields: object) -> list[Event]:
    return [EVENT_DECODER.decode(msgspec.json.encode(event(event_id=f"{prefix}{i}", **fields))) for i in range(n)]


def ids_in_log(directory: Path) -> list[str]:
    return [
        i for _, path in list_segments(directory) for f in framing.scan(path).frames for i in frame_event_ids(f.payload)
    ]
