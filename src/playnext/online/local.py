"""The embedded online store: one SQLite file in WAL mode, and beside it the batch's lists as snapshot files.

SQLite is in-process (no server to run, as the embedded default asks) yet safe across processes: ``playnext
batch`` can write a week of Discover Weekly while ``playnext serve`` reads, and readers never wait for the writer.
Everything here is derived state (rebuilt by ``playnext batch`` and by new plays), so commits skip the fsync
(``synchronous=NORMAL``): a power cut can lose the last moments of sessions, never corrupt the file.
Connections are per thread, as sqlite3 wants.

The lists a batch writes for every listener at once go to a snapshot file per surface (``online.snapshot``, in
``<store>.lists/``), which every process maps and reads without SQLite; the lists written one at a time (a
listener the batch did not reach, a new model version) go to the ``lists`` table. ``get_list`` answers from the
snapshot when it holds the listener, and ``read_written_list`` from the table when that answer is not current.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import groupby, islice
from operator import itemgetter
from pathlib import Path

import msgspec

from playnext.online.snapshot import SnapshotError, Snapshots, SnapshotWriter, erase_everywhere
from playnext.online.store import (
    Decoded,
    Found,
    ListWriter,
    OnlineStore,
    Play,
    SelectPlays,
    SkipListeners,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

# ``lists`` is a rowid table with a unique index, not a WITHOUT ROWID table keyed by (surface, user_id): the
# latter keeps rows in index pages, where a row over about a quarter of a page (1 KB) spills into overflow pages,
# and every stored list is larger (Discover Weekly 1.6 KB, Daily Mix 5.8 KB, Home 8.5 KB). Measured on 30k
# listeners' lists copied from the 100k world, a lookup went from 9.8 / 13.9 / 15.5 µs to 6.0 / 7.2 / 7.8 µs, and
# the file from 627 to 528 MB. A store of the earlier form is converted when first opened (``_migrate``).
_LISTS = "surface TEXT NOT NULL, user_id TEXT NOT NULL, value BLOB NOT NULL, UNIQUE (surface, user_id)"
# A listener's recent plays are one row: ``plays`` holds ``n`` MessagePack arrays [ts, item id, skipped] one after
# another, in the order they arrived. Next track reads them on every request. As a row per play (an index on
# (user_id, ts)), reading a listener's 76 plays took 160 µs in the server process and 250 µs just after a
# next-track request had run (the rows spread over table pages), a fifth of the whole request. Writes append with
# SQL's own concatenation, so a play costs no decoding; once a listener holds twice ``keep``, their row is sorted
# and cut back to the newest ``keep`` (``_trim``). A row that decoded, sorted and re-encoded every listener on
# every write held the GIL for 0.4 ms per 20-play batch and cost ingest a sixth of its rate. A store of the
# earlier form is converted when first opened (``_migrate``).
_RECENT = "user_id TEXT NOT NULL UNIQUE, n INTEGER NOT NULL, plays BLOB NOT NULL"
_APPEND = """
INSERT INTO recent VALUES (?, ?, ?)
ON CONFLICT (user_id) DO UPDATE SET n = n + excluded.n, plays = CAST(plays || excluded.plays AS BLOB)
"""
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS lists ({_LISTS});
CREATE TABLE IF NOT EXISTS recent ({_RECENT});
"""
MMAP_BYTES = 1 << 34
BUSY_S = 10.0  # how long a connection waits for another's lock before it reports the store busy
MIGRATE_WAIT_S = 900  # converting the 100k world's store (2.1 GB) took 33 s, and giving back the space 11 s
# A listener's lists under every surface stored, found through the (surface, user_id) index: the surfaces are
# walked one index seek each (a loose index scan), since ``WHERE user_id = ?`` alone read the whole index, 0.2 s
# for 100k listeners' lists on a cold cache, with the write lock held.
_FORGET_LISTS = """
WITH RECURSIVE surfaces(name) AS (
    SELECT min(surface) FROM lists
    UNION ALL
    SELECT (SELECT min(surface) FROM lists WHERE surface > name) FROM surfaces WHERE name IS NOT NULL
)
DELETE FROM lists WHERE user_id = ?1 AND surface IN (SELECT name FROM surfaces)
"""
_GET_LIST = "SELECT value FROM lists WHERE surface = ? AND user_id = ?"
WRITE_CHUNK = 5_000  # rows per transaction in bulk writes: readers see progress, memory stays flat


def _without_rowid(db: sqlite3.Connection) -> bool:
    found = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'lists'").fetchone()
    return found is not None and "WITHOUT ROWID" in found[0].upper()


def _row_per_play(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'plays'").fetchone() is not None


Recent = list[tuple[float, str, bool]]  # (ts, item id, skipped)
_encode_play = msgspec.msgpack.Encoder().encode
_decoder_recent = msgspec.msgpack.Decoder(Recent)
IN_CHUNK = 500  # listeners per ``IN (…)`` lookup, well under SQLite's limit on bound parameters


def _encode_recent(plays: Recent) -> tuple[int, bytes]:
    return len(plays), b"".join(map(_encode_play, plays))


def _decode_recent(user_id: str, n: int, blob: bytes) -> Recent:
    """A listener's stored plays, oldest first (ties: as they arrived). The ``n`` arrays become one MessagePack
    array by a header of their count. An undecodable value counts as none (it is derived state: the listener's
    next trim, within ``keep`` more plays, empties the row) rather than failing every next-track request of theirs."""
    try:
        plays = _decoder_recent.decode(b"\xdd" + n.to_bytes(4, "big") + blob)
    except (msgspec.DecodeError, OverflowError):
        log.warning("the online store's recent plays of %r could not be read; starting them afresh", user_id)
        return []
    plays.sort(key=itemgetter(0))  # stable, and nearly sorted already: linear
    return plays


class LocalStore(OnlineStore):
    in_place = True

    def __init__(self, path: Path, *, keep: int = 100) -> None:
        self.path = Path(path)
        self.keep = keep
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.snapshot_dir = self.path.with_name(self.path.stem + ".lists")
        self.snapshots = Snapshots(self.snapshot_dir)
        with self._errors():
            self._db().executescript(SCHEMA)
            self._migrate()

    def _migrate(self) -> None:
        """Convert a ``lists`` table of the earlier WITHOUT ROWID form and a ``plays`` table of a row per play, in
        one transaction (a process that opens the store meanwhile waits for it, up to ``MIGRATE_WAIT_S``, then
        finds it done), then give the old tables' pages back to the file system: the copy had doubled the file."""
        db = self._db()
        if not _without_rowid(db) and not _row_per_play(db):
            return
        log.warning("converting the online store in %s to the current layout (once)", self.path)
        db.execute(f"PRAGMA busy_timeout = {MIGRATE_WAIT_S * 1000}")
        try:
            converted = False
            with self._writing(db):
                if _without_rowid(db):  # another process may have converted it while this one waited
                    db.execute(f"CREATE TABLE lists_converted ({_LISTS})")
                    db.execute("INSERT INTO lists_converted SELECT surface, user_id, value FROM lists")
                    db.execute("DROP TABLE lists")
                    db.execute("ALTER TABLE lists_converted RENAME TO lists")
                    converted = True
                if _row_per_play(db):
                    self._convert_plays(db)
                    converted = True
            if converted:
                db.execute("VACUUM")
        finally:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_S * 1000)}")

    def _convert_plays(self, db: sqlite3.Connection) -> None:
        """One row per listener from the rows of their plays, in the order the old reads gave them (time, then
        arrival), each cut to the newest ``keep``; streamed, so memory holds one listener's plays at a time."""
        rows = db.execute("SELECT user_id, ts, item_id, skipped FROM plays ORDER BY user_id, ts, rowid")
        converted = (
            (user, *_encode_recent([(ts, item, bool(skipped)) for _, ts, item, skipped in plays][-self.keep :]))
            for user, plays in groupby(rows, key=itemgetter(0))
        )
        db.executemany("INSERT OR REPLACE INTO recent VALUES (?, ?, ?)", converted)
        db.execute("DROP TABLE plays")

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_S, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not left in free pages
            # Pages are read through a memory map, not a read() each: measured on a 2 GB store of 100k listeners,
            # a precomputed list's lookup went from 40 to 17 µs. SQLite caps the map at its compiled maximum.
            db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @contextlib.contextmanager
    def _writing(self, db: sqlite3.Connection) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error (sqlite3's own context manager does not BEGIN in
        autocommit mode), one thread of this process at a time. Threads left to SQLite's busy handler wait in
        sleeps of up to 100 ms: ingest's session updates from 8 connections, each in its own worker thread, took
        the 99th percentile of an ingest request to 1.5 s. Another process (a batch job) still meets the busy
        timeout."""
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """sqlite3 errors become ``StoreUnavailable`` naming the file: the one error surfaces degrade on."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"online store {self.path}: {exc}") from exc

    def put_lists(self, surface: str, lists: Iterable[tuple[str, bytes]], skip: SkipListeners | None = None) -> int:
        rows = ((surface, user, value) for user, value in lists)
        written = 0
        with self._errors():
            db = self._db()
            while chunk := list(islice(rows, WRITE_CHUNK)):
                with self._writing(db):
                    if skip is not None and (skipped := skip([user for _, user, _ in chunk])):
                        chunk = [row for row in chunk if row[1] not in skipped]
                    db.executemany("INSERT OR REPLACE INTO lists VALUES (?, ?, ?)", chunk)
                written += len(chunk)
        return written

    def get_list(self, surface: str, user_id: str) -> bytes | None:
        found = self.snapshots.get(surface, user_id)
        return found if found is not None else self._written(surface, user_id)

    def get_list_as(self, surface: str, user_id: str, decode: Callable[[Found], Decoded]) -> Decoded:
        found = self.snapshots.read(surface, user_id, decode)
        return found if found is not None else decode(self._written(surface, user_id))

    async def read_written_list(self, surface: str, user_id: str) -> bytes | None:
        return self._written(surface, user_id)

    def _written(self, surface: str, user_id: str) -> bytes | None:
        try:  # ``_errors`` spelt out: a context manager is three calls
            row = self._db().execute(_GET_LIST, (surface, user_id)).fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"online store {self.path}: {exc}") from exc
        return None if row is None else bytes(row[0])

    @contextlib.contextmanager
    def replacing_lists(self, surface: str, skip: SkipListeners | None = None) -> Iterator[ListWriter]:
        """A batch's lists for ``surface`` as a new snapshot, published when the block ends without an error
        (``SnapshotWriter.publish``); this process reads it at once, the others within a second."""
        try:
            writer = SnapshotWriter(self.snapshot_dir, surface, skip)
        except OSError as exc:
            raise StoreUnavailable(f"online store {self.snapshot_dir}: {exc}") from exc
        published = False
        try:
            yield writer
            try:
                writer.publish()
            except (OSError, SnapshotError) as exc:
                raise StoreUnavailable(f"online store {self.snapshot_dir}: cannot publish {surface}: {exc}") from exc
            published = True
        finally:
            if not published:
                writer.discard()
        self.snapshots.refresh()

    def add_plays(self, plays: Sequence[Play], select: SelectPlays | None = None) -> None:
        if not plays:
            return
        with self._errors():
            db = self._db()
            with self._writing(db):
                if select is not None and not (plays := select(list(plays))):
                    return
                new: dict[str, list[bytes]] = {}
                for p in plays:
                    new.setdefault(p.user_id, []).append(_encode_play((p.ts, p.item_id, p.skipped)))
                db.executemany(_APPEND, [(user, len(mine), b"".join(mine)) for user, mine in new.items()])
                self._trim(db, list(new))

    def _trim(self, db: sqlite3.Connection, users: list[str]) -> None:
        """Cut the listeners among ``users`` who hold more than twice ``keep`` plays back to their newest
        ``keep``: a rewrite every ``keep`` plays or so, not on every write."""
        for lo in range(0, len(users), IN_CHUNK):
            chunk = users[lo : lo + IN_CHUNK]
            over = db.execute(f"SELECT user_id, n, plays FROM recent WHERE user_id IN ({','.join('?' * len(chunk))}) "
                              "AND n > ?", [*chunk, 2 * self.keep]).fetchall()  # fmt: skip
            db.executemany(
                "UPDATE recent SET n = ?, plays = ? WHERE user_id = ?",
                [(*_encode_recent(_decode_recent(user, n, blob)[-self.keep :]), user) for user, n, blob in over],
            )

    def recent_plays(self, user_id: str, limit: int) -> list[Play]:
        with self._errors():
            row = self._db().execute("SELECT n, plays FROM recent WHERE user_id = ?", (user_id,)).fetchone()
        if row is None:
            return []
        newest = _decode_recent(user_id, *row)[-min(limit, self.keep) :]
        return [Play(user_id, item, ts, skipped) for ts, item, skipped in newest]

    def forget(self, user_id: str) -> None:
        with self._errors():
            db = self._db()
            with self._writing(db):
                db.execute(_FORGET_LISTS, (user_id,))
                db.execute("DELETE FROM recent WHERE user_id = ?", (user_id,))
            try:
                erase_everywhere(self.snapshot_dir, user_id)
            except (OSError, SnapshotError) as exc:
                raise StoreUnavailable(f"online store {self.snapshot_dir}: {user_id!r}'s lists could not be erased "
                                       f"from the batch's snapshots; retry the forget: {exc}") from exc  # fmt: skip
            # The pages as they were before the delete stay in the write-ahead log until a checkpoint copies the
            # log into the file and truncates it, which waits for every reader (``BUSY_S``). A reader that holds
            # on longer (a long scan, a tool with a transaction open) would leave the listener's data in the log:
            # that is an error to retry, not a forget done.
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise StoreUnavailable(
                f"online store {self.path}: {user_id!r}'s lists and plays are deleted, but a reader held the store "
                f"for {BUSY_S:g} s, so earlier copies remain in its write-ahead log until the forget is retried"
            )

    def list_users(self, surface: str) -> list[str]:
        """Every listener with a list for ``surface``, in the snapshot or written since, sorted."""
        return sorted(user for user, _ in self.all_lists(surface))

    def all_lists(self, surface: str) -> Iterator[tuple[str, bytes]]:
        """Every listener's list for ``surface`` as ``get_list`` answers it: the snapshot's, then the rows written
        for listeners it does not hold (to copy them into another store)."""
        self.snapshots.refresh()
        in_snapshot = set()
        for user, value in self.snapshots.records(surface):
            in_snapshot.add(user)
            yield user, value
        with self._errors():  # streamed: a store from before snapshots holds gigabytes of rows
            for user, value in self._db().execute("SELECT user_id, value FROM lists WHERE surface = ?", (surface,)):
                if user not in in_snapshot:
                    yield user, bytes(value)

    def ping(self) -> None:
        with self._errors():
            self._db().execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()
