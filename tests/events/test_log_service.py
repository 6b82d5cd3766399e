"""The log served to serving workers over a local socket: the same verdicts, durability and failures as the log
itself, and nothing a broken or hostile peer sends reaches the segments."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from playnext.events import vectored
from playnext.events.log import EventLog, LogUnavailable
from playnext.events.log_service import MAX_MESSAGE, Fresh, LogService, RemoteLog, Submit
from playnext.events.schema import encode_lines
from tests.events.helpers import events, ids_in_log


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[EventLog, LogService, Path]]:
    log = EventLog(tmp_path / "log").open()
    service = LogService(log, tmp_path / "writer.sock").start()
    try:
        yield log, service, tmp_path / "writer.sock"
    finally:
        service.close()
        log.close()


def test_two_workers_share_one_dedup(served: tuple[EventLog, LogService, Path]) -> None:
    log, _, path = served
    first, second = RemoteLog(path).open(), RemoteLog(path).open()
    try:
        assert first.submit(events(3)).result(timeout=10) == [True, True, True]
        # A retry reaching the other worker is a duplicate, and one batch's second copy too.
        again = events(2) + events(1, prefix="new") + events(1, prefix="new")
        assert second.submit(again).result(timeout=10) == [False, False, True, False]
        assert first.backlog() == 0 == second.backlog()
    finally:
        first.close()
        second.close()
    assert sorted(ids_in_log(log.directory)) == ["e0", "e1", "e2", "new0"]
    assert log.stats.events_stored == 4 and log.stats.events_duplicate == 3


def test_exposures_gathered_on_the_loop_travel_as_one_message(served: tuple[EventLog, LogService, Path]) -> None:
    log, _, path = served
    remote = RemoteLog(path).open()

    async def answers() -> list[object]:
        futures = [remote.submit_fresh(events(2, prefix=f"x{i}-")) for i in range(5)]
        assert remote.fresh_backlog() == 10
        assert len({id(f) for f in futures}) == 1  # gathered: one message, one answer for all five
        return [await asyncio.wrap_future(f) for f in futures]

    try:
        assert asyncio.run(answers()) == [None] * 5
        assert remote.fresh_backlog() == 0
        assert remote.submit_fresh(events(1, prefix="outside-")).result(timeout=10) is None  # no loop: sent now
        assert remote.rotate() >= 1
        assert remote.stats.events_stored == 11  # the writer's counters
    finally:
        remote.close()
    assert len(ids_in_log(log.directory)) == 11


def test_many_answers_gathered_travel_whole_in_one_message(served: tuple[EventLog, LogService, Path]) -> None:
    """More answers than one ``sendmsg`` takes buffers, and more bytes than the socket holds: sent as they are,
    every line arrives once, in one round's message."""
    log, _, path = served
    remote = RemoteLog(path).open()
    n = vectored.IOV_MAX + 300

    async def answers() -> None:
        futures = [remote.submit_fresh_encoded(encode_lines(events(2, prefix=f"a{i}-")), 2) for i in range(n)]
        assert len({id(f) for f in futures}) == 1
        await asyncio.wrap_future(futures[0])

    try:
        asyncio.run(answers())
    finally:
        remote.close()
    assert sorted(ids_in_log(log.directory)) == sorted(f"a{i}-{j}" for i in range(n) for j in range(2))


def test_lines_that_do_not_frame_are_refused_and_the_log_is_untouched(
    served: tuple[EventLog, LogService, Path],
) -> None:
    log, _, path = served
    remote = RemoteLog(path).open()
    try:
        two = encode_lines(events(2))
        torn = two.rstrip(b"\n")
        bad = [(Submit(0, ["a", "b", "c"], two), []), (Submit(0, ["a"], two), []),
               (Fresh(0, 2, len(torn)), [torn[:9], torn[9:]]), (Fresh(0, 1, len(two)), [two])]  # fmt: skip
        for message, lines in bad:
            with pytest.raises(LogUnavailable, match="NDJSON lines"):
                remote._request(message, lines=lines).result(timeout=10)
        assert remote.healthy  # a refused message is not a broken connection, and the stream is still in step
        assert remote.submit(events(1, prefix="ok")).result(timeout=10) == [True]
    finally:
        remote.close()
    assert ids_in_log(log.directory) == ["ok0"]


def _message(message: object, raw: bytes = b"") -> bytes:
    body = msgspec.msgpack.encode(message)
    return struct.pack(">I", len(body)) + body + raw


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x00\x00\x05hello",
        struct.pack(">I", MAX_MESSAGE + 1),
        b"\x00\x00\x00\x10short",
        b"\xff" * 64,
        _message(Fresh(1, 1, MAX_MESSAGE + 1), b"{}\n"),
        _message(Fresh(1, 1, -1)),
        _message(Fresh(1, 1, 100), b'{"type":"exposure"}\n'),
    ],
    ids=["not-msgpack", "oversized", "torn", "noise", "oversized-lines", "negative-lines", "torn-lines"],
)
def test_a_peer_sending_garbage_is_dropped_and_others_go_on(
    served: tuple[EventLog, LogService, Path], garbage: bytes
) -> None:
    log, service, path = served
    remote = RemoteLog(path).open()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as hostile:
            hostile.connect(str(path))
            hostile.sendall(garbage)
            hostile.shutdown(socket.SHUT_WR)
            # The service hung up on it (a reset when bytes it never read were left).
            with contextlib.suppress(ConnectionResetError):
                assert hostile.recv(1) == b""
        assert remote.submit(events(1)).result(timeout=10) == [True]
    finally:
        remote.close()
    assert ids_in_log(log.directory) == ["e0"]
    deadline = time.monotonic() + 5
    while service.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert service.connections == 0


def test_losing_the_writer_fails_whatever_waits_and_tells_the_worker(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "log").open()
    service = LogService(log, tmp_path / "writer.sock").start()
    lost = threading.Event()
    remote = RemoteLog(tmp_path / "writer.sock", on_lost=lost.set).open()
    assert remote.submit(events(1)).result(timeout=10) == [True]
    service.close()
    log.close()
    assert lost.wait(10)
    assert not remote.healthy
    with pytest.raises(LogUnavailable, match="lost the event log writer"):
        remote.submit(events(1, prefix="after")).result(timeout=10)
    with pytest.raises(LogUnavailable):
        remote.submit_fresh(events(1, prefix="x")).result(timeout=10)
    remote.close()


def test_no_writer_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LogUnavailable, match="no event log writer"):
        RemoteLog(tmp_path / "nothing.sock").open()


def test_the_socket_is_for_this_user_only(served: tuple[EventLog, LogService, Path]) -> None:
    _, _, path = served
    assert path.stat().st_mode & 0o077 == 0
