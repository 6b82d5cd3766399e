"""Record framing shared by the log writer, its recovery and the compactor.

A frame is ``magic | payload length | crc32(payload) | payload``. The magic catches zero-filled or garbage tails
that a length field alone would misread; the checksum catches a payload torn by a crash mid-write. One frame
holds one group commit (many events as NDJSON), so readers check a few checksums per megabyte, not one per event.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"PNF1"
HEADER = struct.Struct("<4sII")
MAX_FRAME_BYTES = 1 << 30


def frame(payload: bytes) -> bytes:
    return frame_header([payload]) + payload


def frame_header(parts: Sequence[bytes | bytearray]) -> bytes:
    """The header of the frame whose payload is ``parts`` joined, without joining them: the log's writer writes a
    round's chunks as they came (``events.vectored``)."""
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    return HEADER.pack(MAGIC, sum(map(len, parts)), crc)


@dataclass(frozen=True)
class Frame:
    offset: int
    end: int
    payload: bytes


@dataclass(frozen=True)
class ScanResult:
    frames: list[Frame]
    valid_end: int  # offset just past the last good frame
    size: int  # bytes in the file; > valid_end means a torn or corrupt tail

    @property
    def torn(self) -> bool:
        return self.size > self.valid_end


def scan(path: Path, start: int = 0) -> ScanResult:
    """Read every whole, checksummed frame from ``start``; stop at the first that is not."""
    data = path.read_bytes()
    frames = list(_frames(data, start))
    valid_end = frames[-1].end if frames else start
    return ScanResult(frames=frames, valid_end=valid_end, size=len(data))


def _frames(data: bytes, offset: int) -> Iterator[Frame]:
    size = len(data)
    while offset + HEADER.size <= size:
        magic, length, crc = HEADER.unpack_from(data, offset)
        start = offset + HEADER.size
        end = start + length
        if magic != MAGIC or length > MAX_FRAME_BYTES or end > size:
            return
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            return
        yield Frame(offset=offset, end=end, payload=payload)
        offset = end
