"""The set of event ids ever stored, so that a retried event is stored once, also across restarts.

It lives in SQLite beside the log. The log stays the source of truth: each commit here records the log position
it covers, and on start the log is replayed from that checkpoint. That is why SQLite can run without an fsync per
commit (``synchronous=NORMAL`` in WAL mode): whatever a power cut takes from it is re-read from the log, which
was fsynced before any event was acknowledged.

Ids are kept as 16-byte BLAKE2b digests: fixed size whatever the client sends, and collisions are out of reach
(2^-64 at 2^32 events).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path

# SQLite's default bound on host parameters in one statement (since 3.32).
_MAX_PARAMS = 32_000


def digest(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=16).digest()


class SeenIds:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS seen (h BLOB PRIMARY KEY) WITHOUT ROWID")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS checkpoint (one INTEGER PRIMARY KEY CHECK (one = 1), "
            "segment INTEGER NOT NULL, offset INTEGER NOT NULL)"
        )

    def present(self, digests: list[bytes]) -> set[bytes]:
        found: set[bytes] = set()
        for i in range(0, len(digests), _MAX_PARAMS):
            chunk = digests[i : i + _MAX_PARAMS]
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in self._db.execute(f"SELECT h FROM seen WHERE h IN ({marks})", chunk))
        return found

    def add(self, digests: Iterable[bytes], segment: int, offset: int) -> None:
        """Record ids and the log position they reach, in one transaction."""
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR IGNORE INTO seen (h) VALUES (?)", ((d,) for d in digests))
            self._db.execute(
                "INSERT INTO checkpoint (one, segment, offset) VALUES (1, ?, ?) "
                "ON CONFLICT(one) DO UPDATE SET segment = excluded.segment, offset = excluded.offset",
                (segment, offset),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def checkpoint(self) -> tuple[int, int]:
        row = self._db.execute("SELECT segment, offset FROM checkpoint").fetchone()
        return (row[0], row[1]) if row else (0, 0)

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM seen").fetchone()[0])

    def close(self) -> None:
        self._db.close()
