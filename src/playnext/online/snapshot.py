"""A batch's lists as one read-only file per surface, memory-mapped by every serving process: a lookup is a binary
search and two slices, with no database call on the request's path.

Why not the SQLite table alone: reading a precomputed answer's value there took about 18 µs of the route's 85 in a
loop of requests (a profile of the in-process app), more than anything else the route does, and over HTTP each of
those microseconds costs more (SQLite's long code path is cold by the time a request reaches it). The batch writes
every listener's lists at once and never updates one in place, the case a constant key-value file serves best
(Spotify's Sparkey is the same idea). LMDB would do the lookup as fast, but it never overwrites the pages it frees,
so a forgotten listener's lists would stay in the file until reused; here ``erase`` overwrites them in place.

Layout (little-endian): a 32-byte header (``MAGIC``, the record count, where the index starts, the file's length),
then one record per listener (a ``live`` byte, a padding byte, key length u16, value length u32, key, value), then
the index: every key's CRC-32, sorted (u32), and each one's record offset in the same order (u64). CRC-32 is not
unique, so a lookup compares the record's key and tries the neighbours with the same hash. A reader also keeps where
each bucket of hashes (their top 16 bits) starts in the index, worked out when it maps the file, and bisects only
within the key's bucket: 1.9 µs a lookup in a loop at 100k listeners, against 2.3 µs over the whole index.

``erase`` clears the record's ``live`` byte, then overwrites its key and value with zeros and its key's hash in
the index, in place, in the page cache every reader maps; a reader checks ``live`` again after copying a value, so
it never returns bytes that an erase was overwriting while it copied them. The record's lengths stay, so that the
records can still be walked in order (``records``).
"""

from __future__ import annotations

import logging
import mmap
import os
import secrets
import struct
import time
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np

from playnext.durable import file_lock, fsync_dir
from playnext.online.store import SkipListeners

log = logging.getLogger(__name__)

MAGIC = b"PNLISTS1"
_HEADER = struct.Struct("<8sQQQ")  # magic, records, index offset, file length
_RECORD = struct.Struct("<BxHI")  # live, padding, key length, value length
MAX_KEY = 0xFFFF
MAX_VALUE = 0xFFFFFFFF
SUFFIX = ".lists"
RECHECK_S = 1.0  # how often a reader looks for a newly published snapshot
_BUCKET_BITS = 16  # of a key's hash, to find its bucket of the index (``Snapshot._starts``): 256 KB a snapshot
_BUCKETS = 1 << _BUCKET_BITS
_BUCKET_SHIFT = 32 - _BUCKET_BITS


_Read = TypeVar("_Read")


class SnapshotError(ValueError):
    """The file is not a lists snapshot, or not a whole one."""


def key_hash(key: bytes) -> int:
    return zlib.crc32(key)


class Snapshot:
    """One published snapshot, mapped read-only; or writable, to ``erase`` from it (the process that forgets)."""

    def __init__(self, path: Path, writable: bool = False) -> None:
        self.path = Path(path)
        with open(self.path, "r+b" if writable else "rb") as f:
            stat = os.fstat(f.fileno())
            self.identity = _identity(stat)
            if stat.st_size < _HEADER.size:
                raise SnapshotError(f"{self.path}: too short for a lists snapshot")
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
        magic, count, index_at, length = _HEADER.unpack_from(self._map, 0)
        if magic != MAGIC or length != len(self._map) or index_at + 12 * count != length or index_at < _HEADER.size:
            self._map.close()
            raise SnapshotError(f"{self.path}: not a whole lists snapshot")
        self.count, self._records_end = count, index_at
        self._view = view = memoryview(self._map)
        self._hashes = view[index_at : index_at + 4 * count].cast("I")
        self._offsets = view[index_at + 4 * count : length].cast("Q")
        # Where each hash's top 16 bits start in the index: a lookup bisects within its bucket (one or two entries
        # at 100k listeners), not over all of them (17 steps, each a memoryview read). ``erase`` lowers an erased
        # entry's hash to its neighbour's, which keeps every bucket sorted: the bounds stay right.
        hashes = np.frombuffer(self._map, dtype="<u4", count=count, offset=index_at)
        buckets = np.arange(_BUCKETS + 1, dtype=np.uint64) << _BUCKET_SHIFT
        self._starts = memoryview(np.searchsorted(hashes, buckets).astype(np.uint32))  # format "I": ints

    def _found(self, key: bytes) -> Iterator[tuple[int, int, int, int]]:
        """(index position, record offset, key length, value length) of each record whose key is ``key``."""
        h, hashes, m = key_hash(key), self._hashes, self._map
        bucket = h >> _BUCKET_SHIFT
        i = bisect_left(hashes, h, self._starts[bucket], self._starts[bucket + 1])
        while i < self.count and hashes[i] == h:
            at = self._offsets[i]
            i += 1
            if at + _RECORD.size > self._records_end:
                continue  # a damaged index: no record there
            _, klen, vlen = _RECORD.unpack_from(m, at)
            start = at + _RECORD.size
            if m[start : start + klen] == key:
                yield i - 1, at, klen, vlen

    def get(self, user_id: str) -> bytes | None:
        """The listener's value, or None."""
        return self.read(user_id, bytes)

    def read(self, user_id: str, decode: Callable[[memoryview], _Read]) -> _Read | None:
        """``decode`` of the listener's value, read in place from the map; None if there is none. ``decode`` must
        copy what it keeps, since the view is of pages an erase overwrites: a precomputed answer decoded its
        17.5 KB value (Daily Mix, 100k world) after copying it out, and the copy was 1.3 µs of the route's 23 in
        one process. ``_found``'s loop written out: every precomputed answer comes here."""
        key = user_id.encode()
        h, hashes, m = key_hash(key), self._hashes, self._map
        bucket = h >> _BUCKET_SHIFT
        i = bisect_left(hashes, h, self._starts[bucket], self._starts[bucket + 1])
        while i < self.count and hashes[i] == h:
            at = self._offsets[i]
            i += 1
            try:
                live, klen, vlen = _RECORD.unpack_from(m, at)
            except struct.error:
                continue  # a damaged index: no record there
            start = at + _RECORD.size
            if live and m[start : start + klen] == key:
                end = start + klen + vlen
                if end > self._records_end:
                    return None  # cut short
                value = decode(self._view[start + klen : end])
                return value if m[at] else None  # erased while it was read
        return None

    def erase(self, user_id: str) -> int:
        """Overwrite the listener's record with zeros (flag first: see the module), and their key's hash in the
        index with the one before it (the index stays sorted, and a short id's CRC-32 would name it); how many
        records were erased."""
        key = user_id.encode()
        m, erased = self._map, 0
        for i, at, klen, vlen in list(self._found(key)):
            m[at] = 0
            start = at + _RECORD.size
            m[start : start + klen + vlen] = bytes(klen + vlen)
            self._hashes[i] = self._hashes[i - 1] if i else 0
            erased += 1
        if erased:
            m.flush()
        return erased

    def records(self) -> Iterator[tuple[str, bytes]]:
        """Every live record, in file order (to copy the lists into another store)."""
        at, m = _HEADER.size, self._map
        while at < self._records_end:
            live, klen, vlen = _RECORD.unpack_from(m, at)
            start = at + _RECORD.size
            if live:
                yield m[start : start + klen].decode(), m[start + klen : start + klen + vlen]
            at = start + klen + vlen

    def close(self) -> None:
        self._hashes.release()
        self._offsets.release()
        self._view.release()
        self._map.close()


def _identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    return stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size


class SnapshotWriter:
    """One surface's snapshot as a batch writes it: published whole by ``publish``, or never (``discard``)."""

    def __init__(self, directory: Path, surface: str, skip: SkipListeners | None = None) -> None:
        self.directory, self.surface, self.skip = Path(directory), surface, skip
        self.directory.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(self.directory, surface)
        self.temporary = self.directory / f".{surface}{SUFFIX}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        self._file = open(self.temporary, "wb")  # noqa: SIM115  closed by publish or discard
        self._file.write(b"\0" * _HEADER.size)
        self._at = _HEADER.size
        self._users: set[str] = set()
        self._hashes: list[int] = []
        self._offsets: list[int] = []

    def write(self, lists: Iterable[tuple[str, bytes]]) -> int:
        """Add each listener's value, but those ``skip`` names; how many were added. A listener given twice (in
        one batch, a bug) is an error, not a silent choice of one value."""
        chunk, skip = list(lists), self.skip
        if skip is not None and chunk and (skipped := skip([user for user, _ in chunk])):
            chunk = [(user, value) for user, value in chunk if user not in skipped]
        for user, value in chunk:
            key = user.encode()
            if user in self._users:
                raise ValueError(f"{self.surface}: listener {user[:40]!r} given twice in one batch")
            if not key or len(key) > MAX_KEY or len(value) > MAX_VALUE:
                raise ValueError(f"{self.surface}: listener {user[:40]!r}: a key of 1 to {MAX_KEY} bytes and a "
                                 f"value of at most {MAX_VALUE} bytes")  # fmt: skip
            self._file.write(_RECORD.pack(1, len(key), len(value)))
            self._file.write(key)
            self._file.write(value)
            self._users.add(user)
            self._hashes.append(key_hash(key))
            self._offsets.append(self._at)
            self._at += _RECORD.size + len(key) + len(value)
        return len(chunk)

    def publish(self) -> int:
        """Finish the file and make it the surface's snapshot (an atomic rename); how many listeners it holds.
        Under the directory's lock, which a forget also takes: the listeners forgotten since the lists were made
        (``skip``, asked once more now) are erased first, and a forget that comes after finds this file in place
        to erase from. A process still mapping the snapshot it replaced reads that one until it next looks, within
        ``RECHECK_S``: a listener forgotten in that second may still be answered from it there, as a request
        already under way when a forget lands is answered as before it."""
        hashes = np.asarray(self._hashes, dtype="<u4")
        order = np.argsort(hashes, kind="stable")
        self._file.write(hashes[order].tobytes())
        self._file.write(np.asarray(self._offsets, dtype="<u8")[order].tobytes())
        length = self._file.tell()
        self._file.seek(0)
        self._file.write(_HEADER.pack(MAGIC, len(hashes), self._at, length))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        forgotten: set[str] = set()
        with file_lock(lock_path(self.directory)):
            if self.skip is not None and self._users and (forgotten := self.skip(sorted(self._users))):
                fresh = Snapshot(self.temporary, writable=True)
                try:
                    for user in forgotten:
                        fresh.erase(user)
                finally:
                    fresh.close()
            os.replace(self.temporary, path_of(self.directory, self.surface))
            fsync_dir(self.directory)
        return len(self._users - forgotten)

    def discard(self) -> None:
        self._file.close()
        self.temporary.unlink(missing_ok=True)


def _remove_abandoned(directory: Path, surface: str) -> None:
    """Delete the files of batches that died before publishing (a whole surface's lists each: gigabytes at
    scale); a file whose writer still runs is left to it."""
    for path in directory.glob(f".{surface}{SUFFIX}.*.tmp"):
        try:
            pid = int(path.name[len(f".{surface}{SUFFIX}.") :].split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except (ValueError, PermissionError):
            continue  # not a name this module gives, or another user's process: not ours to remove


def path_of(directory: Path, surface: str) -> Path:
    return directory / f"{surface}{SUFFIX}"


def lock_path(directory: Path) -> Path:
    return directory / ".lock"


def erase_everywhere(directory: Path, user_id: str) -> int:
    """Erase a listener from every surface's snapshot in ``directory``, under its lock. A damaged snapshot, which
    no process reads (``Snapshots.refresh``) and whose records cannot be found to erase, is deleted instead: it is
    derived data, and its listeners' lists are computed again on request until the next batch."""
    if not directory.is_dir():
        return 0
    erased = 0
    with file_lock(lock_path(directory)):
        for path in sorted(directory.glob(f"*{SUFFIX}")):
            try:
                snapshot = Snapshot(path, writable=True)
            except SnapshotError as exc:
                log.error("deleting %s, which is damaged (%s), rather than leave a forgotten listener in it", path,
                          exc)  # fmt: skip
                path.unlink()
                continue
            try:
                erased += snapshot.erase(user_id)
            finally:
                snapshot.close()
    return erased


class Snapshots:
    """A process's view of the published snapshots: each surface's, looked up again every ``RECHECK_S``."""

    def __init__(self, directory: Path, recheck_s: float = RECHECK_S) -> None:
        self.directory, self.recheck_s = Path(directory), recheck_s
        self._open: dict[str, Snapshot] = {}
        self._checked = -float("inf")
        self._failed: set[tuple[str, tuple[int, int, int, int]]] = set()

    def get(self, surface: str, user_id: str) -> bytes | None:
        return self.read(surface, user_id, bytes)

    def read(self, surface: str, user_id: str, decode: Callable[[memoryview], _Read]) -> _Read | None:
        """``Snapshot.read`` in the surface's snapshot as published now."""
        if time.monotonic() - self._checked > self.recheck_s:
            self.refresh()
        snapshot = self._open.get(surface)
        return None if snapshot is None else snapshot.read(user_id, decode)

    def refresh(self) -> None:
        """Map what is published now. A damaged file is logged once and not read (its lists are then computed)."""
        self._checked = time.monotonic()
        found: dict[str, Snapshot] = {}
        try:
            entries = [e for e in os.scandir(self.directory) if e.name.endswith(SUFFIX) and not e.name.startswith(".")]
        except FileNotFoundError:
            entries = []
        for entry in entries:
            surface = entry.name[: -len(SUFFIX)]
            try:
                identity = _identity(entry.stat())
            except FileNotFoundError:
                continue
            known = self._open.get(surface)
            if known is not None and known.identity == identity:
                found[surface] = known
                continue
            if (surface, identity) in self._failed:
                continue
            try:
                found[surface] = Snapshot(Path(entry.path))
            except (OSError, SnapshotError) as exc:
                self._failed.add((surface, identity))
                log.error("not reading the precomputed lists in %s: %s", entry.path, exc)
        self._open = found  # a replaced snapshot is unmapped once no request holds it

    def records(self, surface: str) -> Iterator[tuple[str, bytes]]:
        """Every live record of the surface's snapshot, as mapped now (none without one)."""
        snapshot = self._open.get(surface)
        return iter(()) if snapshot is None else snapshot.records()
