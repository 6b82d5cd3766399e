"""The online store's one small interface, and the choice of implementation from settings.

Serving needs two kinds of per-listener state at request time, both keyed by listener:

- **precomputed lists** (Discover Weekly, Daily Mix, Home shelves), written in bulk by ``playnext batch`` and read
  one listener at a time; each value describes its own model version and validity, so readers never need the
  writer to have finished (stale values are recomputed on demand, and written back one at a time);
- **recent plays**, appended by ingest and read by the next-track surface as the live session.

The embedded default is SQLite in ``data_dir/online`` (in-process, no server, shared safely by the server and a
batch command running beside it), with a batch's lists in snapshot files beside it, published when the batch
ends (a half-done batch publishes nothing); ``online.backend = "redis"`` shares one Redis among many API replicas,
where a batch's lists land as it goes (a half-done batch is a mix of fresh and stale values).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol, TypeVar

import msgspec

from playnext.config import Settings


class StoreUnavailable(Exception):
    """The store cannot be read or written now; callers degrade to a fallback instead of failing the request."""


class Play(msgspec.Struct, frozen=True, gc=False):
    """One play (or skip) as the session sees it: the item and when, in seconds since the epoch. Skips are kept
    so that next-track never proposes them again, and left out of the sequence the model reads. A struct, not a
    dataclass: next track makes one per recent play on every request, and a frozen dataclass took 660 ns each
    against 90 (76 plays: 43 µs)."""

    user_id: str
    item_id: str
    ts: float
    skipped: bool = False


# Which listeners of a chunk of lists not to write, asked as the chunk is written (``put_lists``).
SkipListeners = Callable[[list[str]], set[str]]
# Which of a batch of plays to write, asked as the batch is written (``add_plays``).
SelectPlays = Callable[[list[Play]], list[Play]]


class ListWriter(Protocol):
    def write(self, lists: Iterable[tuple[str, bytes]]) -> int:
        """Add each listener's encoded list; how many were kept (not those forgotten since they were made)."""
        ...


Decoded = TypeVar("Decoded")
Found = bytes | memoryview | None  # a listener's stored lists as ``get_list_as`` hands them over


class OnlineStore(ABC):
    # True for a store that answers ``get_list`` in this process, in microseconds (``LocalStore``): a request may
    # then read its precomputed lists on the event loop without awaiting (``api.lists.stored_in_place``).
    in_place = False

    @abstractmethod
    def put_lists(self, surface: str, lists: Iterable[tuple[str, bytes]], skip: SkipListeners | None = None) -> int:
        """Store each listener's encoded list for ``surface``, replacing what was there; returns how many were
        written. ``skip`` names the listeners of each chunk not to write (forgotten since the lists' model version
        was made), asked at the moment the chunk is written. A forget (``forget``, after the tombstone is
        recorded) that lands after the question must not be undone by the write: SQLite asks inside its write
        transaction, which the forget's delete waits for; Redis stops the write with the forget's mark."""

    @abstractmethod
    def get_list(self, surface: str, user_id: str) -> bytes | None: ...

    def get_list_as(self, surface: str, user_id: str, decode: Callable[[Found], Decoded]) -> Decoded:
        """``decode`` of ``get_list``'s value (None when there is none), which must not itself return None. A store
        that maps its lists hands ``decode`` a view of them, not a copy (``LocalStore``): ``decode`` copies what
        it keeps."""
        return decode(self.get_list(surface, user_id))

    async def read_list(self, surface: str, user_id: str) -> bytes | None:
        """``get_list`` for a request on the event loop. An in-process store answers in microseconds, in place; a
        store across the network awaits its answer, so a slow or dead server never holds the loop."""
        return self.get_list(surface, user_id)

    async def read_written_list(self, surface: str, user_id: str) -> bytes | None:
        """The list ``put_lists`` last wrote for the listener, for when the one ``read_list`` found is not current:
        a store that keeps a batch's lists apart from those written one at a time (``LocalStore``'s snapshots)
        answers here from the latter. None from a store that keeps them in one place, as ``read_list`` read it."""
        return None

    @contextlib.contextmanager
    def replacing_lists(self, surface: str, skip: SkipListeners | None = None) -> Iterator[ListWriter]:
        """Every listener's lists for ``surface`` from one batch, written through the writer it yields
        (``write(lists)``, as ``put_lists``) and in force once the block ends without an error. Here they are
        simply put, chunk by chunk; a store may instead publish them at once (``LocalStore``)."""
        yield PutLists(self, surface, skip)

    @abstractmethod
    def add_plays(self, plays: Sequence[Play], select: SelectPlays | None = None) -> None:
        """Append plays; each listener keeps only their newest ``keep`` plays. ``select`` picks the plays to write
        (not those of a listener forgotten meanwhile) at the moment they are written, as ``skip`` does for
        ``put_lists``."""

    @abstractmethod
    def recent_plays(self, user_id: str, limit: int) -> list[Play]:
        """The listener's newest plays, oldest first."""

    async def read_recent_plays(self, user_id: str, limit: int) -> list[Play]:
        """``recent_plays`` for a request on the event loop, as ``read_list``."""
        return self.recent_plays(user_id, limit)

    @abstractmethod
    def forget(self, user_id: str) -> None:
        """Remove everything the store holds about a listener."""

    @abstractmethod
    def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the store answers: what readiness reports."""

    @abstractmethod
    def close(self) -> None: ...

    async def aclose(self) -> None:
        """``close``, from the event loop the ``read_…`` calls ran on (a server's shutdown)."""
        self.close()


def open_store(settings: Settings) -> OnlineStore:
    online = settings.online
    if online.backend == "redis":
        from playnext.online.redis_store import RedisStore

        return RedisStore(online.redis_url, keep=online.recent_plays, prefix=online.redis_prefix,
                          timeout_s=online.redis_timeout_s, cooldown_s=online.redis_cooldown_s)  # fmt: skip
    from playnext.online.local import LocalStore

    return LocalStore(settings.online_dir / "online.sqlite3", keep=online.recent_plays)


class PutLists:
    """``put_lists`` as a ``ListWriter``: a batch for some listeners only, or a store that publishes nothing."""

    def __init__(self, store: OnlineStore, surface: str, skip: SkipListeners | None) -> None:
        self.store, self.surface, self.skip = store, surface, skip

    def write(self, lists: Iterable[tuple[str, bytes]]) -> int:
        return self.store.put_lists(self.surface, lists, skip=self.skip)
