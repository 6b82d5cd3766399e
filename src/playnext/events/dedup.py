"""Every event id ever stored, so that a retried event is stored once, also across restarts and compactions.

Ids are kept as 16-byte BLAKE2b digests (fixed size whatever a client sends; collisions out of reach at 2^-64 for
four billion events) in sorted NumPy runs, looked up a whole batch at a time with ``searchsorted``, plus a hash
set for the active segment. That keeps dedup at a few microseconds per event, where a B-tree insert per id (SQLite
was tried) costs more than the fsync it sits beside.

Durability comes from the log itself. When a segment is sealed, the sorted digests of its events are written
beside it as ``segment-<seq>.ids`` (aside, fsync, rename). Compaction deletes a segment's events, never its
``.ids``, so the set survives. On start the set is the union of every ``.ids`` file, and any segment without one
(the one active at a crash) is read and given one. Many small ``.ids`` files are merged into one
``ids-upto-<seq>.ids``; a crash half-way leaves duplicates across files, which a union does not mind.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from playnext.durable import atomic_write

DTYPE = np.dtype("S16")
_SIDECAR = re.compile(r"^segment-(\d+)\.ids$")
_MERGED = re.compile(r"^ids-upto-(\d+)\.ids$")
# More sorted runs than this in memory are merged into one (lookups touch every run).
MAX_RUNS = 8
# More sidecar files than this on start are merged into one file, to keep start-up reads few and large.
MAX_SIDECARS = 64


def digest(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=16).digest()


def sidecar_path(directory: Path, seq: int) -> Path:
    return directory / f"segment-{seq:012d}.ids"


def _read(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), dtype=DTYPE)


def _member(run: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if len(run) == 0:
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(run, keys), len(run) - 1)
    return run[at] == keys


class SeenIds:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._runs: list[np.ndarray] = []
        self._active: set[bytes] = set()
        self._size = 0
        # Merging runs of millions of ids takes a second; it runs beside the writer, which keeps answering.
        self._runs_lock = threading.Lock()
        self._merging: threading.Thread | None = None

    # -- start-up ---------------------------------------------------------------------------------------------

    def load(self) -> list[int]:
        """Read every ``.ids`` file; return the sequence numbers that have one."""
        covered: list[int] = []
        runs = []
        for path in sorted(self.directory.glob("*.ids")):
            sidecar, merged = _SIDECAR.match(path.name), _MERGED.match(path.name)
            if sidecar:
                covered.append(int(sidecar.group(1)))
            if sidecar or merged:
                runs.append(_read(path))
        if runs:
            base = np.unique(np.concatenate(runs))
            self._runs = [base]
            self._size = len(base)
        self._consolidate_files()
        return covered

    def _consolidate_files(self) -> None:
        sidecars = sorted(p for p in self.directory.glob("segment-*.ids") if _SIDECAR.match(p.name))
        if len(sidecars) <= MAX_SIDECARS or not self._runs:
            return
        upto = int(_SIDECAR.match(sidecars[-1].name).group(1))  # type: ignore[union-attr]
        merged_files = [p for p in self.directory.glob("ids-upto-*.ids") if _MERGED.match(p.name)]
        # Everything on disk is in self._runs[0] right after load.
        atomic_write(self.directory / f"ids-upto-{upto:012d}.ids", self._runs[0].tobytes())
        for path in [*sidecars, *merged_files]:
            if path.name != f"ids-upto-{upto:012d}.ids":
                path.unlink(missing_ok=True)

    # -- the hot path -----------------------------------------------------------------------------------------

    def present(self, digests: list[bytes]) -> np.ndarray:
        """A boolean per digest: seen before (in any sealed run or the active segment)."""
        found = np.fromiter((d in self._active for d in digests), dtype=bool, count=len(digests))
        with self._runs_lock:
            runs = self._runs
        if runs:
            keys = np.array(digests, dtype=DTYPE)
            for run in runs:
                found |= _member(run, keys)
        return found

    def add(self, digests: Iterable[bytes]) -> None:
        before = len(self._active)
        self._active.update(digests)
        self._size += len(self._active) - before

    def seal(self, seq: int) -> None:
        """Persist the active segment's digests beside it and move them into the in-memory runs."""
        run = np.sort(np.array(list(self._active), dtype=DTYPE)) if self._active else np.empty(0, DTYPE)
        atomic_write(sidecar_path(self.directory, seq), run.tobytes())
        with self._runs_lock:
            if len(run):
                self._runs = [*self._runs, run]
            self._active = set()
            crowded = len(self._runs) > MAX_RUNS
        if crowded and (self._merging is None or not self._merging.is_alive()):
            self._merging = threading.Thread(target=self._merge, name="playnext-dedup-merge", daemon=True)
            self._merging.start()

    def _merge(self) -> None:
        """Fold the runs present now into one; runs sealed meanwhile stay beside it. numpy sorts without the GIL."""
        with self._runs_lock:
            taken = self._runs
        merged = np.concatenate(taken)
        merged.sort(kind="stable")  # the runs are sorted: a stable (tim)sort merges them in near-linear time
        with self._runs_lock:
            self._runs = [merged, *self._runs[len(taken) :]]

    def wait_for_merge(self) -> None:
        if self._merging is not None:
            self._merging.join()

    @property
    def runs(self) -> int:
        with self._runs_lock:
            return len(self._runs)

    def __len__(self) -> int:
        return self._size
