"""The durable, append-only event log.

Why it looks like this:
- **Acknowledged means on disk.** ``submit`` resolves only after the events' frame is written and fsynced.
- **Group commit.** One writer thread drains every batch waiting in its queue, writes them as one frame and pays
  one fsync for all of them, so 32 concurrent clients cost about one fsync per round, not 32.
- **Dedup in the writer.** Checking ids where writes are serialized means two concurrent requests with the same
  ``event_id`` cannot both be stored.
- **Server-made records ride along** (``submit_fresh``: the surfaces' exposures, ``events.exposures``). Their
  ids are unique by construction, so they skip dedup, and they wait in a buffer the writer takes whole on its next
  round. A surface answer then costs an append to a list, not a wake-up of the writer: measured on Discover
  Weekly, handing each answer's impressions to the writer on their own cost 85 µs per answer in thread switches,
  most of the answer.
- **Crash recovery never refuses to start.** On open, a torn last frame (crash mid-write) is cut off; everything
  before it was acknowledged and is kept. Segments that have no dedup sidecar yet are read back into the index.
- **One writer.** A lock file keeps a second process from appending to the same segments; it fails fast with the
  holder's pid instead of interleaving frames.

Segments are ``segment-<seq>.log``. The highest-numbered one is active; every other one is sealed (whole, fsynced,
never written again) and may be compacted into the lake and then deleted.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from playnext.config import Settings
from playnext.durable import fsync_dir
from playnext.events import framing
from playnext.events.dedup import SeenIds, digest, sidecar_path
from playnext.events.schema import Event, encode_lines
from playnext.events.vectored import write_all

log = logging.getLogger(__name__)

_SEGMENT_PREFIX = "segment-"
_SEGMENT_SUFFIX = ".log"


class LogLocked(RuntimeError):
    """Another live process is the log's writer."""


class LogUnavailable(RuntimeError):
    """The log failed to write (disk full, I/O error) or is closed; nothing of the batch was acknowledged."""


def segment_path(directory: Path, seq: int) -> Path:
    return directory / f"{_SEGMENT_PREFIX}{seq:012d}{_SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        name = path.name
        if name.startswith(_SEGMENT_PREFIX) and name.endswith(_SEGMENT_SUFFIX):
            digits = name[len(_SEGMENT_PREFIX) : -len(_SEGMENT_SUFFIX)]
            if digits.isdigit():
                found.append((int(digits), path))
    return sorted(found)


class _IdOnly(msgspec.Struct):
    event_id: str


_ID_DECODER = msgspec.json.Decoder(list[_IdOnly])


def frame_event_ids(payload: bytes) -> list[str]:
    """Event ids of one frame's NDJSON, without validating the rest (it was validated before it was written)."""
    lines = payload.splitlines()
    return [e.event_id for e in _ID_DECODER.decode(b"[" + b",".join(lines) + b"]")]


class LogLock:
    """An advisory ``flock`` on ``<dir>/LOCK`` that dies with its process, so a SIGKILL never leaves it stuck."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._path = directory / "LOCK"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LogLocked(
                f"the event log in {self._path.parent} is in use by process {holder}; "
                "stop it, or send events to it over HTTP (`playnext events import FILE --url URL --key KEY`)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@dataclass
class LogStats:
    """Counters for metrics and benchmarks; written by the writer thread only."""

    events_stored: int = 0
    events_duplicate: int = 0
    groups: int = 0
    fsyncs: int = 0
    fsync_seconds: float = 0.0
    bytes_written: int = 0
    recovered_bytes_cut: int = 0
    replayed_events: int = 0


@dataclass
class _Pending:
    ids: Sequence[str]
    future: Future[list[bool]]
    events: Sequence[Event] = ()  # encoded by the writer, or
    ndjson: bytes = b""  # encoded by the submitter, one line per id (``submit_encoded``)


@dataclass
class _Rotate:
    future: Future[int]


@dataclass
class _Fresh:
    records: list[msgspec.Struct]
    encoded: list[bytes | bytearray]
    count: int


_STOP = object()
_DRAIN = object()  # the fresh buffer went from empty to not: the writer takes it on this round


@dataclass
class EventLog:
    directory: Path
    segment_max_bytes: int = 64 * 1024 * 1024
    group_max_events: int = 20_000
    segment_max_age_s: float = 300.0
    # Fresh records alone start a round at most this often, so that a round carries many answers' impressions.
    # A round costs the serving thread far more than its own work: whenever the writer wakes (its queue, its
    # write, its fsync) it waits for the GIL, and CPython wakes it again at every release the busy event loop
    # makes (each SQLite read releases it), never letting it in and never timing out. Each futile wake costs
    # the loop a futex round trip: at 5 ms a Discover Weekly answer took 131-143 µs in process against 75-77 µs
    # with logging stubbed out, and the writer woke 1.7 times per answer; at 50 ms it wakes 0.5 times, and
    # Discover Weekly's rate over HTTP at 8 connections rose by 14-15 % in one process and with two workers.
    # What it risks: a crash loses up to this long of answers' impressions instead of 5 ms (at random: analyses
    # stay unbiased). Client events do not wait for it.
    fresh_interval_s: float = 0.05
    stats: LogStats = field(default_factory=LogStats)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        self._lock = LogLock(self.directory)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._seq = 0
        self._size = 0
        self._seen: SeenIds | None = None
        self._failed: BaseException | None = None
        self._opened_at = 0.0
        self._closed = True
        self._fresh: list[msgspec.Struct] = []
        self._fresh_encoded: list[bytes | bytearray] = []  # NDJSON handed in encoded (``submit_fresh_encoded``)
        self._fresh_count = 0  # records in both
        self._fresh_future: Future[None] = Future()
        self._fresh_lock = threading.Lock()
        self._fresh_round_at = 0.0

    # -- life cycle -------------------------------------------------------------------------------------------

    def open(self) -> EventLog:
        self._lock.acquire()
        try:
            self._recover()
            self._seen = SeenIds(self.directory)
            self._replay(set(self._seen.load()))
            self._start_segment()
        except BaseException:
            self._release()
            raise
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="playnext-log-writer", daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> EventLog:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        self._release()
        records, future = self._take_fresh()  # submitted after the writer's last round: say so, never hang
        if records.count:
            future.set_exception(LogUnavailable("the event log closed before these records were written"))

    def _release(self) -> None:
        self._closed = True
        if self._seen is not None:
            self._seen.wait_for_merge()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._seen = None
        self._lock.release()

    @property
    def healthy(self) -> bool:
        return not self._closed and self._failed is None

    @property
    def active_segment(self) -> int:
        return self._seq

    # -- public API -------------------------------------------------------------------------------------------

    def submit(self, events: Sequence[Event]) -> Future[list[bool]]:
        """Queue events; the future gives, per event, True if stored now or False if its id was seen before."""
        return self._submit(_Pending([e.event_id for e in events], Future(), events=events))

    def submit_encoded(self, ids: Sequence[str], ndjson: bytes) -> Future[list[bool]]:
        """``submit`` for events validated and encoded elsewhere (a serving worker's, ``events.log_service``):
        line ``i`` of ``ndjson`` (as ``encode_lines`` writes it) is event ``ids[i]``."""
        check_lines(ndjson, len(ids))
        return self._submit(_Pending(ids, Future(), ndjson=ndjson))

    def _submit(self, pending: _Pending) -> Future[list[bool]]:
        if (unavailable := self._unavailable()) is not None:
            pending.future.set_exception(unavailable)
        else:
            self._queue.put(pending)
        return pending.future

    def submit_fresh(self, records: Sequence[msgspec.Struct]) -> Future[None]:
        """Queue server-made records (events, or records that encode as events: ``surfaces.exposure``) whose ids
        cannot have been stored before (impressions: a random 64-bit prefix per process and a counter, never shown
        to clients). The writer neither looks them up nor keeps them in the seen set: at 30-60 impressions per
        answer they would be nearly all of it, its memory and the sort of every sealed segment's ids. They join a
        buffer the writer takes whole on its next round; the future, shared by everything in that round, resolves
        once they are on disk."""
        return self._add_fresh(records, b"", len(records))

    def submit_fresh_encoded(self, ndjson: bytes | bytearray, count: int) -> Future[None]:
        """``submit_fresh`` for ``count`` records already encoded as NDJSON (a serving worker's; from the log's
        service, the buffer its message was read into, which nothing writes to after)."""
        check_lines(ndjson, count)
        return self._add_fresh((), ndjson, count)

    def _add_fresh(self, records: Sequence[msgspec.Struct], ndjson: bytes | bytearray, count: int) -> Future[None]:
        if (unavailable := self._unavailable()) is not None:
            future: Future[None] = Future()
            future.set_exception(unavailable)
            return future
        with self._fresh_lock:
            wake = not self._fresh_count
            self._fresh.extend(records)
            if ndjson:
                self._fresh_encoded.append(ndjson)
            self._fresh_count += count
            future = self._fresh_future
        if wake:
            self._queue.put(_DRAIN)
        return future

    def _unavailable(self) -> LogUnavailable | None:
        if self._closed:
            return LogUnavailable("the event log is closed")
        if self._failed is not None:
            return LogUnavailable(f"the event log stopped after a write error: {self._failed}")
        return None

    def backlog(self) -> int:
        """Batches queued for the writer and not yet on disk."""
        return self._queue.qsize()

    def fresh_backlog(self) -> int:
        """Server-made records waiting for the writer's next round."""
        return self._fresh_count

    def append(self, events: Sequence[Event]) -> list[bool]:
        return self.submit(events).result()

    def rotate(self) -> int:
        """Seal the active segment (if it holds anything) and return the highest sealed sequence number."""
        future: Future[int] = Future()
        if self._closed:
            raise LogUnavailable("the event log is closed")
        self._queue.put(_Rotate(future))
        return future.result()

    # -- recovery ---------------------------------------------------------------------------------------------

    def _recover(self) -> None:
        segments = list_segments(self.directory)
        if not segments:
            return
        _, last = segments[-1]
        result = framing.scan(last)
        if result.torn:
            cut = result.size - result.valid_end
            log.warning("cutting a torn tail of %d bytes from %s (crash mid-write)", cut, last.name)
            with open(last, "r+b") as fh:
                fh.truncate(result.valid_end)
                os.fsync(fh.fileno())
            self.stats.recovered_bytes_cut = cut

    def _replay(self, covered: set[int]) -> None:
        """Give every non-empty segment without a dedup sidecar one, from its events (a crash skipped it)."""
        assert self._seen is not None
        for seq, path in list_segments(self.directory):
            if seq in covered or path.stat().st_size == 0:
                continue
            ids = [i for f in framing.scan(path).frames for i in frame_event_ids(f.payload)]
            self._seen.add(digest(i) for i in ids)
            self._seen.seal(seq)
            self.stats.replayed_events += len(ids)

    def _start_segment(self) -> None:
        segments = list_segments(self.directory)
        if segments and segments[-1][1].stat().st_size == 0:
            self._seq = segments[-1][0]
        else:
            self._seq = (segments[-1][0] if segments else 0) + 1
        path = segment_path(self.directory, self._seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size
        self._opened_at = time.monotonic()
        fsync_dir(self.directory)

    # -- the writer thread ------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=min(1.0, self.segment_max_age_s))
            except queue.Empty:
                self._rotate_if_old()
                continue
            if item is _DRAIN:
                item = self._gather_fresh()
            if item is _STOP:
                self._write_group([])  # what was buffered before the stop
                return
            if isinstance(item, _Rotate):
                self._write_group([])  # what was submitted before the rotation belongs in the sealed segment
                self._do_rotate(item)
                continue
            group = [item] if isinstance(item, _Pending) else []
            n = sum(len(p.ids) for p in group)
            stop_after = False
            while n < self.group_max_events:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP or isinstance(nxt, _Rotate):
                    # Finish this group first, then honour the control message in order.
                    self._write_group(group)
                    group = []
                    if nxt is _STOP:
                        stop_after = True
                    else:
                        self._do_rotate(nxt)  # type: ignore[arg-type]
                    break
                if isinstance(nxt, _Pending):
                    group.append(nxt)
                    n += len(nxt.ids)
            if group or self._fresh_count:
                self._write_group(group)
            if stop_after:
                return

    def _gather_fresh(self) -> object:
        """Wait out ``fresh_interval_s`` since the last fresh round, unless something else arrives first (then that
        goes on, with the buffer in its group)."""
        wait = self._fresh_round_at + self.fresh_interval_s - time.monotonic()
        if wait > 0:
            try:
                return self._queue.get(timeout=wait)
            except queue.Empty:
                pass
        return _DRAIN

    def _take_fresh(self) -> tuple[_Fresh, Future[None]]:
        self._fresh_round_at = time.monotonic()
        with self._fresh_lock:
            records = _Fresh(self._fresh, self._fresh_encoded, self._fresh_count)
            future = self._fresh_future
            self._fresh, self._fresh_encoded, self._fresh_count, self._fresh_future = [], [], 0, Future()
        return records, future

    def _write_group(self, group: list[_Pending]) -> None:
        """The group's new events and the fresh buffer, as one frame and one fsync."""
        fresh, fresh_future = self._take_fresh()
        if not group and not fresh.count:
            fresh_future.set_result(None)
            return
        if self._failed is not None:
            error = LogUnavailable(f"the event log stopped after a write error: {self._failed}")
            for p in group:
                p.future.set_exception(error)
            fresh_future.set_exception(error)
            return
        try:
            verdicts, new, new_digests = self._dedup(group)
            if new or fresh.count:
                self._write_frame([*new, encode_lines(fresh.records), *fresh.encoded])
                assert self._seen is not None
                self._seen.add(new_digests)
                if self._size >= self.segment_max_bytes:
                    self._seal_and_start_next()
                else:
                    self._rotate_if_old()
        except BaseException as exc:  # every waiter must hear about it, or a client hangs forever
            for p in group:
                if not p.future.done():
                    p.future.set_exception(LogUnavailable(str(exc)))
            fresh_future.set_exception(LogUnavailable(str(exc)))
            return
        self.stats.groups += 1
        self.stats.events_stored += len(new_digests) + fresh.count
        for p, v in zip(group, verdicts, strict=True):
            self.stats.events_duplicate += v.count(False)
            p.future.set_result(v)
        fresh_future.set_result(None)

    def _dedup(self, group: list[_Pending]) -> tuple[list[list[bool]], list[bytes], list[bytes]]:
        """Per batch, which events are new; the new ones encoded (one chunk per batch); their digests."""
        assert self._seen is not None
        digests = [digest(i) for p in group for i in p.ids]
        known = self._seen.present(digests).tolist()
        verdicts: list[list[bool]] = []
        new: list[bytes] = []
        new_digests: list[bytes] = []
        taken: set[bytes] = set()  # a second copy later in the same group is a duplicate too
        at = 0
        for p in group:
            v = []
            for _ in p.ids:
                d = digests[at]
                is_new = not known[at] and d not in taken
                if is_new:
                    taken.add(d)
                    new_digests.append(d)
                v.append(is_new)
                at += 1
            verdicts.append(v)
            if any(v):
                if p.ndjson and all(v):
                    new.append(p.ndjson)
                elif p.ndjson:  # its last piece is the empty one after the final newline
                    lines = p.ndjson.split(b"\n")[:-1]
                    new.append(b"".join(line + b"\n" for line, keep in zip(lines, v, strict=True) if keep))
                else:
                    new.append(encode_lines([e for e, keep in zip(p.events, v, strict=True) if keep]))
        return verdicts, new, new_digests

    def _write_frame(self, payload: list[bytes | bytearray]) -> None:
        """One frame whose payload is ``payload`` joined, written without joining it (``events.vectored``)."""
        assert self._fd is not None
        fd, before = self._fd, self._size
        try:
            written = write_all(lambda views: os.writev(fd, views), [framing.frame_header(payload), *payload])
            t0 = time.perf_counter()
            os.fdatasync(self._fd)
            self.stats.fsync_seconds += time.perf_counter() - t0
            self.stats.fsyncs += 1
        except OSError as exc:
            # Cut the partial frame off, or later frames would sit behind garbage that recovery stops at.
            try:
                os.ftruncate(self._fd, before)
                os.fsync(self._fd)
            except OSError as again:
                self._failed = again
            raise LogUnavailable(f"writing the event log failed: {exc}") from exc
        self._size = before + written
        self.stats.bytes_written += written

    def _seal_and_start_next(self) -> None:
        """Seal the active segment: its dedup sidecar is written before a newer segment exists, so every sealed
        segment has one and compaction may delete its events."""
        assert self._fd is not None and self._seen is not None
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        self._seen.seal(self._seq)
        self._seq += 1
        self._fd = os.open(segment_path(self.directory, self._seq), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = 0
        self._opened_at = time.monotonic()
        fsync_dir(self.directory)

    def _rotate_if_old(self) -> None:
        if self._size > 0 and self._failed is None and time.monotonic() - self._opened_at >= self.segment_max_age_s:
            try:
                self._seal_and_start_next()
            except OSError as exc:
                self._failed = exc

    def _do_rotate(self, item: _Rotate) -> None:
        try:
            if self._size > 0:
                self._seal_and_start_next()
            item.future.set_result(self._seq - 1)
        except BaseException as exc:
            self._failed = exc
            item.future.set_exception(LogUnavailable(str(exc)))


# ``_newlines``: up to this many lines each is found with ``bytes.find``; from this size on they are counted by NumPy
_FIND_UP_TO = 16
_NUMPY_FROM = 16 * 1024
_NEWLINE = ord("\n")


def check_lines(ndjson: bytes | bytearray, count: int) -> None:
    """Lines encoded elsewhere must frame as ``count`` lines, or one bad line would merge into its neighbour and
    compaction would stop at the segment."""
    if count < 0 or (count and not ndjson.endswith(b"\n")) or _newlines(ndjson, count) != count:
        raise ValueError(f"expected {count} NDJSON lines, each ending in a newline")


def _newlines(data: bytes | bytearray, expected: int) -> int:
    """How many newlines ``data`` holds, or ``expected + 1`` once it holds more. Every exposure and ingested line
    is counted twice (by the serving worker and by the log's writer), and ``bytes.count`` reads one byte at a time:
    a Daily Mix answer's 3.3 KB of lines took 0.9 µs, the same again at the writer. ``find`` is ``memchr``, which
    skips a word at a time (six lines: 0.6 µs); for a writer's message of a few hundred answers NumPy compares
    in SIMD (1,200 lines, 541 KB: 26 µs against 143)."""
    if expected <= _FIND_UP_TO:
        found, at = 0, data.find(b"\n")
        while at >= 0 and found <= expected:
            found, at = found + 1, data.find(b"\n", at + 1)
        return found
    if len(data) >= _NUMPY_FROM:
        return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == _NEWLINE))
    return data.count(b"\n")


def sealed_segments(directory: Path) -> list[tuple[int, Path]]:
    """Every segment but the active (highest) one: whole, and safe to read while a writer appends."""
    return list_segments(directory)[:-1]


def event_log_for(settings: Settings) -> EventLog:
    """The log as configured; not yet opened (``open()`` or ``with``)."""
    return EventLog(
        settings.log_dir,
        segment_max_bytes=settings.segment_max_bytes,
        group_max_events=settings.group_commit_max_events,
        segment_max_age_s=settings.segment_max_age_s,
    )


__all__ = [
    "EventLog",
    "LogLock",
    "LogLocked",
    "LogStats",
    "LogUnavailable",
    "event_log_for",
    "frame_event_ids",
    "list_segments",
    "sealed_segments",
    "segment_path",
    "sidecar_path",
]
