"""The embedded online store: one SQLite file in WAL mode.

SQLite is in-process (no server to run, as the embedded default asks) yet safe across processes: ``playnext
batch`` can write a week of Discover Weekly while ``playnext serve`` reads, and readers never wait for the writer.
Everything here is derived state (rebuilt by ``playnext batch`` and by new plays), so commits skip the fsync
(``synchronous=NORMAL``): a power cut can lose the last moments of sessions, never corrupt the file.
Connections are per thread, as sqlite3 wants.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path

from playnext.online.store import OnlineStore, Play, SelectPlays, SkipListeners, StoreUnavailable

log = logging.getLogger(__name__)

# ``lists`` is a rowid table with a unique index, not a WITHOUT ROWID table keyed by (surface, user_id): the
# latter keeps rows in index pages, where a row over about a quarter of a page (1 KB) spills into overflow pages,
# and every stored list is larger (Discover Weekly 1.6 KB, Daily Mix 5.8 KB, Home 8.5 KB). Measured on 30k
# listeners' lists copied from the 100k world, a lookup went from 9.8 / 13.9 / 15.5 µs to 6.0 / 7.2 / 7.8 µs, and
# the file from 627 to 528 MB. A store of the earlier form is converted when first opened (``_migrate``).
_LISTS = "surface TEXT NOT NULL, user_id TEXT NOT NULL, value BLOB NOT NULL, UNIQUE (surface, user_id)"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS lists ({_LISTS});
CREATE TABLE IF NOT EXISTS plays (
    user_id TEXT NOT NULL, ts REAL NOT NULL, item_id TEXT NOT NULL, skipped INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS plays_by_user ON plays (user_id, ts);
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
WRITE_CHUNK = 5_000  # rows per transaction in bulk writes: readers see progress, memory stays flat


def _without_rowid(db: sqlite3.Connection) -> bool:
    found = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'lists'").fetchone()
    return found is not None and "WITHOUT ROWID" in found[0].upper()


class LocalStore(OnlineStore):
    def __init__(self, path: Path, *, keep: int = 100) -> None:
        self.path = Path(path)
        self.keep = keep
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._errors():
            self._db().executescript(SCHEMA)
            self._migrate()

    def _migrate(self) -> None:
        """Convert a ``lists`` table of the earlier WITHOUT ROWID form, in one transaction (a process that opens
        the store meanwhile waits for it, up to ``MIGRATE_WAIT_S``, then finds it done), then give the old table's
        pages back to the file system: the copy had doubled the file."""
        db = self._db()
        if not _without_rowid(db):
            return
        log.warning("converting the online store's lists in %s to the current layout (once)", self.path)
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
            if converted:
                db.execute("VACUUM")
        finally:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_S * 1000)}")

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
        with self._errors():
            row = (
                self._db()
                .execute("SELECT value FROM lists WHERE surface = ? AND user_id = ?", (surface, user_id))
                .fetchone()
            )
        return None if row is None else bytes(row[0])

    def add_plays(self, plays: Sequence[Play], select: SelectPlays | None = None) -> None:
        if not plays:
            return
        with self._errors():
            db = self._db()
            with self._writing(db):
                if select is not None and not (plays := select(list(plays))):
                    return
                users = sorted({p.user_id for p in plays})
                db.executemany(
                    "INSERT INTO plays VALUES (?, ?, ?, ?)", [(p.user_id, p.ts, p.item_id, p.skipped) for p in plays]
                )
                # Trim each touched listener to their newest ``keep`` plays, so the table stays bounded.
                db.executemany(
                    "DELETE FROM plays WHERE user_id = ?1 AND ts < (SELECT ts FROM plays WHERE user_id = ?1 "
                    "ORDER BY ts DESC LIMIT 1 OFFSET ?2)",
                    [(u, self.keep - 1) for u in users],
                )

    def recent_plays(self, user_id: str, limit: int) -> list[Play]:
        with self._errors():
            rows = (
                self._db()
                .execute(
                    "SELECT ts, item_id, skipped FROM plays WHERE user_id = ? ORDER BY ts DESC, rowid DESC LIMIT ?",
                    (user_id, limit),
                )
                .fetchall()
            )
        return [Play(user_id, item, ts, bool(skipped)) for ts, item, skipped in reversed(rows)]

    def forget(self, user_id: str) -> None:
        with self._errors():
            db = self._db()
            with self._writing(db):
                db.execute(_FORGET_LISTS, (user_id,))
                db.execute("DELETE FROM plays WHERE user_id = ?", (user_id,))
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
        with self._errors():
            rows = self._db().execute("SELECT user_id FROM lists WHERE surface = ?", (surface,)).fetchall()
        return [r[0] for r in rows]

    def ping(self) -> None:
        with self._errors():
            self._db().execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()
