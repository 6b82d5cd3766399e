"""The version a server answers with, switched without a restart when ``models promote`` moves the pointer.

``refresh`` reads the pointer (cheap: a stat, and a small read only when it changed) and loads a new version
aside; the swap is one attribute assignment, so a request sees the old or the new version, never half of one. It
watches the registry's ``RESEALED`` mark too: when a listener is forgotten, the process that handles the request
scrubs the version's files on disk, and every other worker or replica serving it from memory must load it again,
not go on answering from the forgotten listener's data.
A version that fails to load is refused: the error is kept for ``/readyz`` and ``/v1/models`` and the version
that was serving goes on serving. The same failed version is not retried until the pointer changes again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from playnext.durable import identity
from playnext.models.registry import POINTER, RESEALED, ModelVersion, Registry, RegistryError

log = logging.getLogger(__name__)
PINNED_RETRY_S = 30.0  # a variant's version that failed to load is tried again after this long


class ServedModel:
    def __init__(self, registry: Registry, prepare: Callable[[ModelVersion], None] | None = None) -> None:
        """``prepare``: run on each version loaded, in the loading thread, before it serves (the structures that
        requests would otherwise build on first use, such as search's index)."""
        self.registry = registry
        self.prepare = prepare
        self.version: ModelVersion | None = None
        self.error: str | None = None
        self._seen: tuple[tuple[int, int] | None, tuple[int, int] | None] | None = None
        self._lock = threading.Lock()
        self._pinned: dict[str, ModelVersion] = {}
        self._failed: dict[str, tuple[float, RegistryError]] = {}

    def _stamp(self) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """The pointer's and the reseal mark's identity (both are replaced whole, so a new inode each time)."""
        return identity(Path(self.registry.root) / POINTER), identity(Path(self.registry.root) / RESEALED)

    def refresh(self, force: bool = False) -> bool:
        """Load the pointed-to version if the pointer moved; True when a new version is now served. ``force``
        loads it again even if not: its files were rewritten in place (a listener scrubbed from it), and what is in
        memory must not outlive what is on disk. The old version serves until the new one is loaded."""
        with self._lock:
            stamp = self._stamp()
            if stamp == self._seen and not force:
                return False
            force = force or (self._seen is not None and stamp[1] != self._seen[1])  # rewritten in place
            self._seen = stamp
            try:
                wanted = self.registry.current_id()
                if wanted is None or (not force and self.version is not None and self.version.id == wanted):
                    self.error = None
                    return False
                loaded = self.registry.load(wanted)
            except RegistryError as exc:
                self.error = str(exc)
                log.error("keeping model version %s: %s", self.version.id if self.version else None, exc)
                return False
            # Build the id → row maps now, in this (loader) thread: built lazily they stalled the event loop for
            # tens of milliseconds on the first requests after every promotion at 100k listeners.
            self._ready(loaded)
            if force:
                self._pinned.clear()  # rewritten on disk too: load them again when next asked for
            self.version, self.error = loaded, None
            log.info("now serving model version %s", loaded.id)
            return True

    def pinned(self, version_id: str) -> ModelVersion:
        """A version other than the served one, by id (an experiment's variant): loaded once and kept; raises
        ``RegistryError`` when it does not exist or fails its checks."""
        with self._lock:
            failed = self._failed.get(version_id)
            if failed is not None and time.monotonic() - failed[0] < PINNED_RETRY_S:
                raise failed[1]  # verifying a version hashes every file: not on every request
            if version_id not in self._pinned:
                try:
                    loaded = self.registry.load(version_id)
                except RegistryError as exc:
                    self._failed[version_id] = (time.monotonic(), exc)
                    raise
                self._ready(loaded)
                self._pinned[version_id] = loaded
            return self._pinned[version_id]

    def _ready(self, loaded: ModelVersion) -> None:
        loaded.data.user_index([]), loaded.data.item_index([])
        if self.prepare is not None:
            self.prepare(loaded)
