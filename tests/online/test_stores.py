"""Both online stores behave alike (lists replaced per listener, plays trimmed, forget, hostile input); the SQLite
one also survives a corrupt file and a second process writing beside it."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from playnext.online import local as local_module
from playnext.online.local import _FORGET_LISTS, LocalStore
from playnext.online.redis_store import RedisStore
from playnext.online.store import OnlineStore, Play, StoreUnavailable


@pytest.fixture(params=["local", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> OnlineStore:
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        s: OnlineStore = RedisStore(server.url, keep=3, prefix="test:")
    else:
        s = LocalStore(tmp_path / "online" / "online.sqlite3", keep=3)
    yield s
    s.close()


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    s = LocalStore(tmp_path / "online" / "online.sqlite3", keep=3)
    yield s
    s.close()


def test_lists_are_replaced_per_listener_and_surface(store: OnlineStore) -> None:
    assert store.put_lists("dw", [("a", b"1"), ("b", b"2")]) == 2
    store.put_lists("dw", [("a", b"3")])
    store.put_lists("mix", [("a", b"4")])
    assert (store.get_list("dw", "a"), store.get_list("dw", "b"), store.get_list("mix", "a")) == (b"3", b"2", b"4")
    assert store.get_list("dw", "nobody") is None


def test_bulk_writes_stream_in_chunks(store: OnlineStore) -> None:
    assert store.put_lists("dw", ((f"u{i}", b"x" * 10) for i in range(12_345))) == 12_345
    assert store.get_list("dw", "u0") == store.get_list("dw", "u12344") == b"x" * 10


def test_listeners_named_by_skip_are_not_written(store: OnlineStore) -> None:
    store.put_lists("dw", [("a", b"old"), ("c", b"old")])
    asked: list[list[str]] = []

    def skip(users: list[str]) -> set[str]:
        asked.append(users)
        return {"a", "nobody"}

    assert store.put_lists("dw", [("a", b"new"), ("b", b"new"), ("c", b"new")], skip=skip) == 2
    assert asked == [["a", "b", "c"]]
    assert (store.get_list("dw", "a"), store.get_list("dw", "b"), store.get_list("dw", "c")) == (b"old", b"new", b"new")


def test_plays_not_selected_are_not_written(store: OnlineStore) -> None:
    store.add_plays([Play("a", "t1", 1.0), Play("b", "t1", 1.0)], select=lambda plays: [p for p in plays if p.ts > 5])
    store.add_plays([Play("a", "t2", 2.0), Play("b", "t9", 9.0)], select=lambda plays: [p for p in plays if p.ts > 5])
    assert store.recent_plays("a", 10) == [] and [p.item_id for p in store.recent_plays("b", 10)] == ["t9"]


def test_skip_and_select_are_asked_inside_the_write_transaction(local: LocalStore) -> None:
    """So a forget (its tombstone recorded first, then the delete, which needs the write lock) cannot fall between
    the question and the write."""
    other = sqlite3.connect(local.path, isolation_level=None, timeout=0)
    locked: list[bool] = []

    def write_lock_is_held() -> None:
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            locked.append(False)
        except sqlite3.OperationalError as exc:
            locked.append("locked" in str(exc))

    local.put_lists("dw", [("a", b"1")], skip=lambda users: write_lock_is_held() or set())
    local.add_plays([Play("a", "t", 1.0)], select=lambda plays: write_lock_is_held() or plays)
    assert locked == [True, True]
    assert local.get_list("dw", "a") == b"1" and len(local.recent_plays("a", 10)) == 1
    other.close()


def _forget_meanwhile(store: OnlineStore, user_id: str, started: list[threading.Thread]) -> None:
    """A forget from another request that lands just after the writer asked whom to skip: it is given half a
    second, which is all of it on Redis and none of it on SQLite (there it waits for the writer's transaction)."""
    forget = threading.Thread(target=store.forget, args=(user_id,))
    forget.start()
    forget.join(timeout=0.5)
    started.append(forget)


def test_a_forget_just_after_the_skip_question_is_not_undone_by_the_write(store: OnlineStore) -> None:
    """The tombstone is not there yet when ``skip`` or ``select`` reads it, then the forget deletes: the write
    that follows must not put the listener's lists or plays back."""
    store.put_lists("dw", [("a", b"old"), ("b", b"old")])
    store.add_plays([Play("a", "t0", 1.0)])
    forgets: list[threading.Thread] = []

    def skip(users: list[str]) -> set[str]:
        _forget_meanwhile(store, "a", forgets)
        return set()

    def select(plays: list[Play]) -> list[Play]:
        _forget_meanwhile(store, "a", forgets)
        return plays

    store.put_lists("dw", [("a", b"new"), ("b", b"new")], skip=skip)
    forgets[0].join()
    assert store.get_list("dw", "a") is None and store.get_list("dw", "b") == b"new"
    store.add_plays([Play("a", "t1", 2.0), Play("b", "t1", 2.0)], select=select)
    forgets[1].join()
    assert store.recent_plays("a", 10) == [] and [p.item_id for p in store.recent_plays("b", 10)] == ["t1"]
    # A listener who comes back afterwards is new data, written as any other.
    store.put_lists("dw", [("a", b"back")], skip=lambda users: set())
    store.add_plays([Play("a", "t2", 3.0)], select=lambda plays: plays)
    assert store.get_list("dw", "a") == b"back" and [p.item_id for p in store.recent_plays("a", 10)] == ["t2"]


def test_hostile_keys_and_values_are_data(store: OnlineStore) -> None:
    evil = "a'; DROP TABLE lists; --\x00\u202e"
    store.put_lists("dw", [(evil, b"\x00\xff" * 1000)])
    assert store.get_list("dw", evil) == b"\x00\xff" * 1000
    store.add_plays([Play(evil, "t'1", 1.0)])
    assert store.recent_plays(evil, 10)[0].item_id == "t'1"


def test_plays_come_back_oldest_first_and_are_trimmed_to_keep(store: OnlineStore) -> None:
    store.add_plays([Play("a", f"t{i}", float(i), skipped=i == 4) for i in (5, 1, 4, 2)])  # out of order
    store.add_plays([Play("b", "x", 9.0)])
    store.add_plays([Play("a", "t6", 6.0)])
    got = store.recent_plays("a", 10)
    assert [p.item_id for p in got] == ["t4", "t5", "t6"]  # keep=3, oldest trimmed
    assert [p.skipped for p in got] == [True, False, False]
    assert [p.item_id for p in store.recent_plays("a", 2)] == ["t5", "t6"]
    assert [p.item_id for p in store.recent_plays("b", 10)] == ["x"]


def test_forget_removes_lists_and_plays_of_that_listener_only(store: OnlineStore) -> None:
    store.put_lists("dw", [("a", b"1"), ("b", b"2")])
    store.add_plays([Play("a", "t", 1.0), Play("b", "t", 1.0)])
    store.forget("a")
    assert store.get_list("dw", "a") is None and store.recent_plays("a", 10) == []
    assert store.get_list("dw", "b") == b"2" and len(store.recent_plays("b", 10)) == 1


def test_forget_finds_the_listeners_lists_through_the_index_not_a_scan(local: LocalStore) -> None:
    local.put_lists("dw", [(f"u{i}", b"x") for i in range(50)])
    local.put_lists("mix", [("u1", b"y")])
    plan = [row[3] for row in local._db().execute("EXPLAIN QUERY PLAN " + _FORGET_LISTS, ("u1",))]
    assert any(step.startswith("SEARCH lists USING INDEX") and "user_id=?" in step for step in plan), plan
    assert not any(step.startswith("SCAN lists") for step in plan), plan
    local.forget("u1")
    assert local.get_list("dw", "u1") is local.get_list("mix", "u1") is None
    assert local.get_list("dw", "u2") == b"x"


def test_forget_is_not_done_while_a_reader_keeps_old_copies_in_the_write_ahead_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deleted rows' earlier pages sit in the ``-wal`` file until a checkpoint truncates it, which a reader's
    open transaction prevents: forget must say so (a retried forget finishes), not report the listener gone."""
    monkeypatch.setattr(local_module, "BUSY_S", 0.2)
    folder = tmp_path / "online"
    store = LocalStore(folder / "online.sqlite3")
    secret = b"alice-listened-to-" * 50
    store.put_lists("dw", [("alice", secret), ("bob", b"bob")])
    store.add_plays([Play("alice", "t-secret", 1.0)])
    reader = sqlite3.connect(folder / "online.sqlite3", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM lists").fetchone()  # a snapshot from before the delete
    with pytest.raises(StoreUnavailable, match="write-ahead log"):
        store.forget("alice")
    assert store.get_list("dw", "alice") is None and store.recent_plays("alice", 10) == []  # the delete stands
    assert any(secret[:36] in f.read_bytes() for f in folder.iterdir())  # ... but old copies are on disk
    reader.execute("COMMIT")
    store.forget("alice")
    assert not any(secret[:36] in f.read_bytes() or b"t-secret" in f.read_bytes() for f in folder.iterdir())
    assert store.get_list("dw", "bob") == b"bob"
    reader.close()
    store.close()


def test_a_failed_bulk_write_leaves_earlier_values_intact(local: LocalStore) -> None:
    store = local
    store.put_lists("dw", [("a", b"old")])

    def broken():  # the batch dies half-way through a chunk
        yield ("a", b"new")
        raise RuntimeError("ranker crashed")

    with pytest.raises(RuntimeError):
        store.put_lists("dw", broken())
    assert store.get_list("dw", "a") == b"old"


def test_a_corrupt_file_is_a_clear_unavailable_error(tmp_path: Path) -> None:
    path = tmp_path / "online.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailable, match=r"online\.sqlite3"):
        LocalStore(path)


def test_another_process_writes_while_this_one_reads(local: LocalStore) -> None:
    """``playnext batch`` and ``playnext serve`` share the file: WAL lets the reader go on during the write."""
    store = local
    store.put_lists("dw", [("a", b"before")])
    writer = (
        "import sys; from playnext.online.local import LocalStore; "
        "s = LocalStore(sys.argv[1]); s.put_lists('dw', ((f'u{i}', b'v') for i in range(50000))); "
        "s.put_lists('dw', [('a', b'after')])"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer, str(store.path)])
    reads = 0
    while proc.poll() is None:
        assert store.get_list("dw", "a") in (b"before", b"after")
        reads += 1
    assert proc.returncode == 0 and reads > 0
    assert store.get_list("dw", "a") == b"after" and store.get_list("dw", "u49999") == b"v"
    assert sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reads_on_the_event_loop_answer_as_the_blocking_ones(store: OnlineStore) -> None:
    store.put_lists("dw", [("a", b"\x00list")])
    store.add_plays([Play("a", f"t{i}", float(i), skipped=i == 2) for i in range(5)])

    async def read() -> tuple[bytes | None, bytes | None, list[Play], list[Play]]:
        try:
            return (await store.read_list("dw", "a"), await store.read_list("dw", "nobody"),
                    await store.read_recent_plays("a", 2), await store.read_recent_plays("nobody", 2))  # fmt: skip
        finally:
            await store.aclose()

    assert asyncio.run(read()) == (b"\x00list", None, store.recent_plays("a", 2), [])


def test_a_stalled_redis_never_holds_the_event_loop(redis_server) -> None:  # type: ignore[no-untyped-def]
    """A request awaits Redis's answer: the loop serves everything else meanwhile, and the read gives up after
    ``timeout_s``."""
    import os
    import signal
    import time

    store = RedisStore(redis_server.url, prefix="test:", timeout_s=0.3, cooldown_s=0.3)
    store.put_lists("dw", [("a", b"1")])

    async def read_while_stalled() -> tuple[float, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        assert await store.read_list("dw", "a") == b"1"  # the loop's connection is open
        ticker = asyncio.create_task(tick())
        os.kill(redis_server.proc.pid, signal.SIGSTOP)
        started = time.monotonic()
        try:
            with pytest.raises(StoreUnavailable, match="Timeout"):
                await store.read_list("dw", "a")
            return time.monotonic() - started, ticks
        finally:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
            ticker.cancel()
            await store.aclose()

    waited, ticks = asyncio.run(read_while_stalled())
    assert 0.25 < waited < 1.0 and ticks >= 10


def test_a_redis_that_goes_away_fails_fast_and_comes_back_by_itself(redis_server) -> None:  # type: ignore[no-untyped-def]
    import time

    store = RedisStore(redis_server.url, prefix="test:", timeout_s=0.2, cooldown_s=0.3)
    store.put_lists("dw", [("a", b"1")])
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(store.read_list("dw", "a")) == b"1"  # a connection the restart will break
    redis_server.stop()
    with pytest.raises(StoreUnavailable, match="Redis at"):
        store.get_list("dw", "a")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cooldown"):  # no waiting on a dead server during the cooldown
        store.get_list("dw", "a")
    assert time.monotonic() - started < 0.05
    redis_server.start()  # a fresh, empty server on the same port
    time.sleep(0.35)
    assert loop.run_until_complete(store.read_list("dw", "a")) is None  # not an error on the broken connection
    assert store.get_list("dw", "a") is None
    store.put_lists("dw", [("a", b"2")])
    assert store.get_list("dw", "a") == b"2" == loop.run_until_complete(store.read_list("dw", "a"))
    loop.run_until_complete(store.aclose())
    loop.close()


def test_a_store_of_the_earlier_layout_is_converted_once_and_keeps_every_list(tmp_path: Path) -> None:
    path = tmp_path / "online.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE lists (surface TEXT NOT NULL, user_id TEXT NOT NULL, value BLOB NOT NULL, "
                "PRIMARY KEY (surface, user_id)) WITHOUT ROWID")  # fmt: skip
    rows = [(s, f"u{i}", bytes([i % 256]) * (500 + i)) for s in ("discover-weekly", "home") for i in range(300)]
    old.executemany("INSERT INTO lists VALUES (?, ?, ?)", rows)
    old.close()
    store = LocalStore(path)
    assert all(store.get_list(s, u) == v for s, u, v in rows)
    check = sqlite3.connect(path)
    assert "WITHOUT ROWID" not in check.execute("SELECT sql FROM sqlite_master WHERE name = 'lists'").fetchone()[0]
    assert check.execute("PRAGMA freelist_count").fetchone() == (0,)  # the old table's pages were given back
    store.put_lists("home", [("u1", b"new")])  # still one row per listener and surface
    assert store.get_list("home", "u1") == b"new"
    assert check.execute("SELECT count(*) FROM lists").fetchone() == (600,)
    again = LocalStore(path)  # converted already: nothing to do
    assert again.get_list("discover-weekly", "u299") == rows[299][2]
    store.close()
    again.close()


def test_plays_of_one_moment_come_back_in_the_order_they_arrived(local: LocalStore) -> None:
    local.add_plays([Play("a", "first", 5.0), Play("a", "second", 5.0)])
    local.add_plays([Play("a", "third", 5.0), Play("a", "earlier", 1.0)])
    assert [p.item_id for p in local.recent_plays("a", 10)] == ["first", "second", "third"]  # keep=3


def test_a_store_with_a_row_per_play_is_converted_once_and_keeps_each_listeners_newest(tmp_path: Path) -> None:
    path = tmp_path / "online.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE plays (user_id TEXT NOT NULL, ts REAL NOT NULL, item_id TEXT NOT NULL, "
                "skipped INTEGER NOT NULL)")  # fmt: skip
    old.execute("CREATE INDEX plays_by_user ON plays (user_id, ts)")
    rows = [(f"u{u}", float(i // 2), f"t{u}-{i}", int(i % 5 == 0)) for u in range(40) for i in range(u % 6)]
    old.executemany("INSERT INTO plays VALUES (?, ?, ?, ?)", rows)
    old.close()
    store = LocalStore(path, keep=3)
    for u in range(40):
        mine = sorted([r for r in rows if r[0] == f"u{u}"], key=lambda r: r[1])[-3:]  # stable: ties by arrival
        got = store.recent_plays(f"u{u}", 10)
        assert [(p.item_id, p.ts, p.skipped) for p in got] == [(i, ts, bool(s)) for _, ts, i, s in mine]
    check = sqlite3.connect(path)
    gone = "SELECT count(*) FROM sqlite_master WHERE name IN ('plays', 'plays_by_user')"
    assert check.execute(gone).fetchone() == (0,)
    assert check.execute("PRAGMA freelist_count").fetchone() == (0,)  # the old table's pages were given back
    store.add_plays([Play("u5", "new", 9.0)])
    assert [p.item_id for p in store.recent_plays("u5", 10)][-1] == "new"
    again = LocalStore(path, keep=3)  # converted already: nothing to do
    assert again.recent_plays("u4", 10) == store.recent_plays("u4", 10)
    store.close()
    again.close()


def test_undecodable_recent_plays_count_as_none_and_are_reset_at_the_listeners_next_trim(local: LocalStore) -> None:
    local.add_plays([Play("a", "t1", 1.0), Play("b", "t1", 1.0)])
    with local._writing(local._db()):
        local._db().execute("UPDATE recent SET plays = ? WHERE user_id = 'a'", (b"\xc1 not msgpack",))
    assert local.recent_plays("a", 10) == []
    assert [p.item_id for p in local.recent_plays("b", 10)] == ["t1"]  # other listeners untouched
    local.add_plays([Play("a", f"t{i}", float(i)) for i in range(2, 2 + 2 * local.keep)])  # past twice keep: reset
    local.add_plays([Play("a", "after", 9.0)])
    assert [p.item_id for p in local.recent_plays("a", 10)] == ["after"]


def test_rows_are_cut_back_to_keep_once_they_hold_twice_as_many(local: LocalStore) -> None:
    def held() -> int:
        return local._db().execute("SELECT n FROM recent WHERE user_id = 'a'").fetchone()[0]

    for i in range(2 * local.keep):  # keep=3
        local.add_plays([Play("a", f"t{i}", float(10 - i))])  # each older than the last
    assert held() == 2 * local.keep
    assert [p.item_id for p in local.recent_plays("a", 10)] == ["t2", "t1", "t0"]  # the newest, by time
    local.add_plays([Play("a", "late", 0.5)])  # the oldest of all: cut at once
    assert held() == local.keep
    assert [p.item_id for p in local.recent_plays("a", 2)] == ["t1", "t0"]


def test_a_session_write_touching_more_listeners_than_one_lookup_holds_keeps_each(local: LocalStore) -> None:
    first = [Play(f"u{i}", "old", 1.0) for i in range(local_module.IN_CHUNK * 2 + 7)]
    local.add_plays(first)
    local.add_plays([Play(p.user_id, "new", 2.0) for p in first])
    assert all([q.item_id for q in local.recent_plays(p.user_id, 10)] == ["old", "new"] for p in first)
