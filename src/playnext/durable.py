"""Writing files so that a crash leaves the old content or the new, never a mix: write aside, fsync, rename; and
reading small state files that other processes replace that way."""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` itself durable, not just the file's bytes."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


@contextlib.contextmanager
def file_lock(path: Path, mode: int = 0o644) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if missing), across threads and processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def identity(path: Path) -> tuple[int, int] | None:
    """What tells a file replaced by ``atomic_write`` from the one before (a new inode, a new mtime), or None when
    it is missing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_ino)


class ReadWhenChanged(Generic[T]):
    """A file's parsed content, read again only when the file changed (another process replaced it with
    ``atomic_write``): for state consulted on every request, such as API keys and tombstones.

    ``recheck_s``: look at the file at most this often (``get(fresh=True)`` looks now). A ``stat`` per request
    cost 17 µs on a sandboxed host, a tenth of a precomputed surface's answer; 0 looks on every call."""

    def __init__(self, path: Path, parse: Callable[[bytes], T], missing: Callable[[], T],
                 recheck_s: float = 0.0) -> None:  # fmt: skip
        self.path, self.parse, self.missing, self.recheck_s = path, parse, missing, recheck_s
        self._cache: tuple[tuple[int, int], T] | None = None
        self._checked = -math.inf

    def get(self, fresh: bool = False) -> T:
        now = time.monotonic()
        if not fresh and self._cache is not None and now - self._checked < self.recheck_s:
            return self._cache[1]
        stamp = identity(self.path)
        if stamp is None:
            self._cache = None
            return self.missing()
        self._checked = now
        if self._cache is None or self._cache[0] != stamp:
            self._cache = (stamp, self.parse(self.path.read_bytes()))
        return self._cache[1]
