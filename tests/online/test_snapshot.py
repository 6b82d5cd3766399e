"""A batch's lists as snapshot files: found by key even when CRC-32s collide, published whole, erased in place, and
never read when damaged."""

from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path

import pytest

from playnext.online.local import LocalStore
from playnext.online.snapshot import (
    RECHECK_S,
    Snapshot,
    SnapshotError,
    Snapshots,
    SnapshotWriter,
    erase_everywhere,
    path_of,
)


def _colliding() -> tuple[str, str]:
    """Two listener ids with the same CRC-32 (the birthday bound: about 77k random ids in; ids that differ in four
    bytes or fewer never collide, CRC-32 being linear)."""
    seen: dict[int, str] = {}
    for n in range(400_000):
        user = hashlib.sha1(str(n).encode()).hexdigest()[:16]
        h = zlib.crc32(user.encode())
        if h in seen:
            return seen[h], user
        seen[h] = user
    raise AssertionError("no collision")


def _publish(directory: Path, surface: str, lists: list[tuple[str, bytes]], skip=None) -> int:  # type: ignore[no-untyped-def]
    writer = SnapshotWriter(directory, surface, skip)
    writer.write(lists[: len(lists) // 2])
    writer.write(lists[len(lists) // 2 :])
    return writer.publish()


def test_every_listener_is_found_even_when_hashes_collide(tmp_path: Path) -> None:
    a, b = _colliding()
    lists = [(a, b"value of a"), ("x", b""), (b, b"value of b" * 1000), ("é\x00🎵", b"\x00\xff" * 50)]
    lists += [(f"n{i}", f"{i}".encode()) for i in range(2000)]
    assert _publish(tmp_path, "dw", lists) == len(lists)
    snapshot = Snapshot(path_of(tmp_path, "dw"))
    for user, value in lists:
        assert snapshot.get(user) == value
    assert snapshot.get("nobody") is None and snapshot.get("") is None
    assert dict(snapshot.records()) == dict(lists)
    snapshot.close()


def test_a_bad_batch_is_refused_and_publishes_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "online.sqlite3")
    with store.replacing_lists("dw") as writer:
        writer.write([("a", b"first")])
    for bad in ([("a", b"1"), ("a", b"2")], [("", b"no key")], [("k" * 70_000, b"key too long")]):
        with pytest.raises(ValueError), store.replacing_lists("dw") as writer:
            writer.write(bad)
        assert store.get_list("dw", "a") == b"first"  # the published snapshot stands
    assert [p.name for p in store.snapshot_dir.iterdir() if p.name.endswith(".tmp")] == []  # nothing left behind


def test_a_damaged_snapshot_is_not_read_and_the_table_answers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = LocalStore(tmp_path / "online.sqlite3")
    store.put_lists("dw", [("a", b"written")])
    with store.replacing_lists("dw") as writer:
        writer.write([("a", b"batch")])
    current = path_of(store.snapshot_dir, "dw")
    for damage in (b"not a snapshot at all", current.read_bytes()[:-5], b""):
        current.write_bytes(damage)
        reader = LocalStore(tmp_path / "online.sqlite3")
        assert reader.get_list("dw", "a") == b"written"
        with pytest.raises(SnapshotError):
            Snapshot(current)
    assert "not reading the precomputed lists" in caplog.text


def test_a_published_snapshot_is_read_by_another_process_within_its_recheck(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "online.sqlite3")
    other = Snapshots(store.snapshot_dir, recheck_s=0)
    assert other.get("dw", "a") is None
    with store.replacing_lists("dw") as writer:
        writer.write([("a", b"one")])
    assert other.get("dw", "a") == b"one" and store.get_list("dw", "a") == b"one"
    with store.replacing_lists("dw") as writer:
        writer.write([("b", b"two")])
    assert other.get("dw", "a") is None and other.get("dw", "b") == b"two"
    assert Snapshots(store.snapshot_dir).get("dw", "b") == b"two"
    assert RECHECK_S <= 1.0


def test_the_snapshot_answers_first_and_the_written_list_when_it_is_not_current(tmp_path: Path) -> None:
    import asyncio

    store = LocalStore(tmp_path / "online.sqlite3")
    with store.replacing_lists("dw") as writer:
        writer.write([("a", b"from the batch"), ("b", b"batch b")])
    store.put_lists("dw", [("a", b"written since"), ("c", b"only written")])
    assert store.get_list("dw", "a") == b"from the batch" and store.get_list("dw", "c") == b"only written"
    assert asyncio.run(store.read_written_list("dw", "a")) == b"written since"
    assert asyncio.run(store.read_written_list("dw", "b")) is None
    assert store.list_users("dw") == ["a", "b", "c"]
    assert dict(store.all_lists("dw")) == {"a": b"from the batch", "b": b"batch b", "c": b"only written"}


def _nowhere_in(directory: Path, *secrets: bytes) -> None:
    for path in directory.iterdir():
        content = path.read_bytes()
        for secret in secrets:
            assert secret not in content, (path, secret)


def test_forget_erases_the_listener_from_the_snapshot_in_place(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "online.sqlite3")
    secret_old, secret_new = b"alice-old-" + os.urandom(8).hex().encode(), b"alice-new-" + os.urandom(8).hex().encode()
    with store.replacing_lists("dw") as writer:
        writer.write([("alice-7f3a", secret_old), ("bob", b"bob's")])
    with store.replacing_lists("dw") as writer:
        writer.write([("alice-7f3a", secret_new), ("bob", b"bob's")])
    reader = Snapshots(store.snapshot_dir, recheck_s=3600)  # another process, mapping the current snapshot
    assert reader.get("dw", "alice-7f3a") == secret_new
    store.forget("alice-7f3a")
    assert store.get_list("dw", "alice-7f3a") is None and store.get_list("dw", "bob") == b"bob's"
    assert reader.get("dw", "alice-7f3a") is None  # the erase is in the pages it maps: no need to look again
    _nowhere_in(store.snapshot_dir, secret_old, secret_new, b"alice-7f3a")  # the replaced file is gone too
    _nowhere_in(store.snapshot_dir, zlib.crc32(b"alice-7f3a").to_bytes(4, "little"))  # nor their key's hash
    assert store.get_list("dw", "bob") == b"bob's" and reader.get("dw", "bob") == b"bob's"  # the index still works
    assert erase_everywhere(store.snapshot_dir, "alice-7f3a") == 0


def test_a_listener_forgotten_while_the_batch_ran_is_not_published(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "online.sqlite3")
    forgotten: set[str] = set()
    with store.replacing_lists("dw", skip=lambda users: forgotten & set(users)) as writer:
        assert writer.write([("a", b"a's list"), ("b", b"b's list")]) == 2
        forgotten.add("a")  # forgotten after their chunk was written, before the publish
        store.forget("a")
        assert writer.write([("a", b"again"), ("c", b"c's")]) == 1
    assert store.get_list("dw", "a") is None and store.get_list("dw", "b") == b"b's list"
    _nowhere_in(store.snapshot_dir, b"a's list", b"again")


def test_a_forget_deletes_a_damaged_snapshot_it_cannot_search(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = LocalStore(tmp_path / "online.sqlite3")
    with store.replacing_lists("dw") as writer:
        writer.write([("a", b"a's secret list"), ("b", b"b's")])
    with store.replacing_lists("mix") as writer:
        writer.write([("a", b"a's mix"), ("b", b"b's mix")])
    damaged = path_of(store.snapshot_dir, "dw")
    damaged.write_bytes(damaged.read_bytes()[:-7])  # cut short: its index no longer finds anyone
    store.forget("a")
    assert not damaged.exists() and "damaged" in caplog.text
    assert (
        store.get_list("mix", "a") is None and store.get_list("mix", "b") == b"b's mix"
    )  # the others: erased in place
    _nowhere_in(store.snapshot_dir, b"a's secret list", b"a's mix")


def test_an_empty_batch_publishes_an_empty_snapshot(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "online.sqlite3")
    store.put_lists("dw", [("a", b"written")])
    with store.replacing_lists("dw") as writer:
        assert writer.write([]) == 0
    assert Snapshot(path_of(store.snapshot_dir, "dw")).count == 0
    assert store.get_list("dw", "a") == b"written" and store.list_users("dw") == ["a"]


def test_the_files_of_a_batch_that_died_are_removed_by_the_next(tmp_path: Path) -> None:
    import subprocess

    store = LocalStore(tmp_path / "online.sqlite3")
    finished = subprocess.Popen(["true"])  # a process that has exited: its pid names no writer now
    finished.wait()
    abandoned = store.snapshot_dir / f".dw.lists.{finished.pid}-0a1b2c3d.tmp"
    running = store.snapshot_dir / f".dw.lists.{os.getpid()}-0a1b2c3d.tmp"  # a writer still alive: left alone
    store.snapshot_dir.mkdir(parents=True)
    abandoned.write_bytes(b"half a batch")
    running.write_bytes(b"a batch under way")
    with store.replacing_lists("dw") as writer:
        writer.write([("a", b"1")])
    assert not abandoned.exists() and running.exists()


def test_erasing_one_of_two_colliding_keys_leaves_the_other_found(tmp_path: Path) -> None:
    a, b = _colliding()
    values = {a: b"a's", b: b"b's"}
    for gone, kept in ((a, b), (b, a)):
        directory = tmp_path / gone
        _publish(directory, "dw", [(f"n{i}", b"n") for i in range(500)] + list(values.items()))
        assert erase_everywhere(directory, gone) == 1
        snapshot = Snapshot(path_of(directory, "dw"))
        assert snapshot.get(gone) is None and snapshot.get(kept) == values[kept]
        assert all(snapshot.get(f"n{i}") == b"n" for i in range(500))
        assert sorted(snapshot._hashes) == list(snapshot._hashes)
        snapshot.close()


def test_erasing_at_the_edges_of_the_index_buckets_leaves_every_other_listener_found(tmp_path: Path) -> None:
    """A lookup bisects only within its hash's bucket of the index, whose bounds a reader works out when it maps the
    file; an erase lowers the erased entry's hash to its neighbour's. Erasing the first and the last entry of many
    buckets must leave everyone else found, by a reader mapped before the erases and by one mapped after."""
    lists = [(f"listener-{i}", f"value {i}".encode()) for i in range(5_000)]
    _publish(tmp_path, "dw", lists)
    before = Snapshot(path_of(tmp_path, "dw"))
    by_hash = sorted(lists, key=lambda kv: zlib.crc32(kv[0].encode()))
    buckets = [zlib.crc32(user.encode()) >> 16 for user, _ in by_hash]
    # the first and the last listener of every bucket holding more than one
    edges = {by_hash[i][0] for i in range(len(by_hash)) if (i == 0 or buckets[i - 1] != buckets[i]) and
             i + 1 < len(by_hash) and buckets[i + 1] == buckets[i]}  # fmt: skip
    edges |= {by_hash[i][0] for i in range(1, len(by_hash)) if
              (i + 1 == len(by_hash) or buckets[i + 1] != buckets[i]) and buckets[i - 1] == buckets[i]}  # fmt: skip
    assert len(edges) > 200
    for user in edges:
        assert erase_everywhere(tmp_path, user) == 1
    after = Snapshot(path_of(tmp_path, "dw"))
    for snapshot in (before, after):
        for user, value in lists:
            assert snapshot.get(user) == (None if user in edges else value), user
        assert sorted(snapshot._hashes) == list(snapshot._hashes)
        snapshot.close()


def test_a_value_is_decoded_in_place_and_never_returned_once_erased_while_it_was_read(tmp_path: Path) -> None:
    """``read`` hands the decoder a view of the mapped value, not a copy, then looks at the record's ``live`` byte
    again: an erase (another process's forget) that overwrote the value while it was decoded must not leave what
    the decoder made of it to be answered."""
    _publish(tmp_path, "dw", [("alice", b"alice's lists"), ("bob", b"bob's lists")])
    reader = Snapshots(tmp_path, recheck_s=3600)
    seen: list[object] = []

    def decode(value: memoryview) -> bytes:
        seen.append(type(value))
        return bytes(value).upper()

    assert reader.read("dw", "alice", decode) == b"ALICE'S LISTS" and seen == [memoryview]
    assert reader.read("dw", "carol", decode) is None and len(seen) == 1  # no record: nothing decoded

    def erased_meanwhile(value: memoryview) -> bytes:
        copied = bytes(value)
        assert erase_everywhere(tmp_path, "alice") == 1  # the forget lands mid-read, in the pages the reader maps
        return copied

    assert reader.read("dw", "alice", erased_meanwhile) is None
    assert reader.read("dw", "bob", bytes) == reader.get("dw", "bob") == b"bob's lists"


def test_a_record_whose_length_runs_past_the_records_is_not_read(tmp_path: Path) -> None:
    """A damaged value length must not hand out the index's bytes as the value."""
    _publish(tmp_path, "dw", [("a", b"aaaa")])
    path = path_of(tmp_path, "dw")
    data = bytearray(path.read_bytes())
    assert Snapshots(tmp_path).get("dw", "a") == b"aaaa"
    data[36:40] = (4 + 6).to_bytes(4, "little")  # the record's value length, past the records into the index
    path.write_bytes(bytes(data))
    assert Snapshot(path).get("a") is None
