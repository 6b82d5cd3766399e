"""Records from files (NDJSON, CSV, Parquet), in chunks, each with the line it came from.

Shared by the event and catalog importers so that both name a bad record the same way (``file:line``) and read
large files in bounded memory. Parsing a record is the caller's business: this module only frames them.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq

FORMATS = ("ndjson", "csv", "parquet")
_SUFFIXES = {
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# A single CSV field or NDJSON line longer than this is hostile or broken, not data.
MAX_RECORD_BYTES = 1024 * 1024


# Rejected lines kept for a report; beyond this only the count grows, so a garbage file cannot exhaust memory.
MAX_REPORTED = 1000


@dataclass
class RejectedLines:
    """The lines an import refused, each with why, as ``FILE:LINE: reason`` reports them."""

    count: int = 0
    shown: list[tuple[int, str]] = field(default_factory=list)

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        if len(self.shown) < MAX_REPORTED:
            self.shown.append((line, reason))


class UnreadableFile(ValueError):
    """The file as a whole cannot be read (missing, wrong format); names the file."""


@dataclass
class Chunk:
    lines: list[int]  # 1-based line (NDJSON, CSV) or row (Parquet) numbers
    records: list[msgspec.Raw | bytes | dict[str, Any]]
    errors: list[tuple[int, str]]  # records unreadable at the framing level
    bytes_read: int  # position in the file, for progress


def detect_format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise UnreadableFile(f"{path}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise UnreadableFile(f"{path}: cannot tell the format from the suffix {path.suffix!r}; pass --format")
    return found


def read_chunks(path: Path, fmt: str | None = None, chunk_size: int = 10_000) -> Iterator[Chunk]:
    if not path.is_file():
        raise UnreadableFile(f"{path}: no such file")
    reader: Callable[[Path, int], Iterator[Chunk]] = {
        "ndjson": _ndjson,
        "csv": _csv,
        "parquet": _parquet,
    }[detect_format(path, fmt)]
    return reader(path, chunk_size)


def _ndjson(path: Path, chunk_size: int) -> Iterator[Chunk]:
    with open(path, "rb") as fh:
        chunk = Chunk([], [], [], 0)
        for number, line in enumerate(fh, start=1):
            if len(line) > MAX_RECORD_BYTES:
                chunk.errors.append((number, f"line is {len(line)} bytes; the limit is {MAX_RECORD_BYTES}"))
            elif line.strip():
                chunk.lines.append(number)
                chunk.records.append(line)
            if len(chunk.records) + len(chunk.errors) >= chunk_size:
                chunk.bytes_read = fh.tell()
                yield chunk
                chunk = Chunk([], [], [], 0)
        chunk.bytes_read = fh.tell()
        yield chunk


def _csv(path: Path, chunk_size: int) -> Iterator[Chunk]:
    csv.field_size_limit(MAX_RECORD_BYTES)
    # surrogateescape keeps a bad byte from aborting the file; the row holding it is rejected below.
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            return
        chunk = Chunk([], [], [], 0)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                chunk.errors.append((reader.line_num, f"unreadable CSV: {exc}"))
                continue
            number = reader.line_num
            if None in row:
                chunk.errors.append((number, "more fields than the header names"))
            elif any(_has_bad_bytes(v) for v in row.values() if v):
                chunk.errors.append((number, "not valid UTF-8"))
            else:
                chunk.lines.append(number)
                chunk.records.append(row)
            if len(chunk.records) + len(chunk.errors) >= chunk_size:
                chunk.bytes_read = fh.buffer.tell() if hasattr(fh, "buffer") else 0
                yield chunk
                chunk = Chunk([], [], [], 0)
        chunk.bytes_read = path.stat().st_size
        yield chunk


def _has_bad_bytes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _parquet(path: Path, chunk_size: int) -> Iterator[Chunk]:
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise UnreadableFile(f"{path}: not a readable Parquet file ({exc})") from None
    total_rows = max(parquet.metadata.num_rows, 1)
    size = path.stat().st_size
    row = 0
    for batch in parquet.iter_batches(batch_size=chunk_size):
        records = batch.to_pylist()
        lines = list(range(row + 1, row + 1 + len(records)))
        row += len(records)
        yield Chunk(lines, records, [], int(size * row / total_rows))
