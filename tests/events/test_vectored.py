"""Many buffers written whole without joining them: short writes go on from the byte where they stopped, more
buffers than one call takes are split over calls, and a real socket and file receive exactly the bytes joined."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from playnext.events import vectored
from playnext.events.vectored import write_all

BUFFERS = [b"alpha", b"", bytearray(b"beta-beta"), memoryview(b"xgammax")[1:-1], b"d" * 37, b"e"]
JOINED = b"".join(bytes(b) for b in BUFFERS)


def test_short_writes_go_on_from_the_byte_where_they_stopped() -> None:
    for limit in (1, 3, 7, 100):
        out: bytearray = bytearray()
        calls: list[int] = []

        def write(views: list[memoryview], limit: int = limit, out: bytearray = out, calls: list[int] = calls) -> int:
            calls.append(len(views))
            taken = b"".join(bytes(v) for v in views)[:limit]
            out.extend(taken)
            return len(taken)

        assert write_all(write, BUFFERS) == len(JOINED)
        assert bytes(out) == JOINED
        assert len(calls) == -(-len(JOINED) // limit)  # each call took all it was allowed, nothing twice
        assert all(n > 0 for n in calls)


def test_more_buffers_than_one_call_takes_are_split_over_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectored, "IOV_MAX", 2)
    out, calls = bytearray(), []

    def write(views: list[memoryview]) -> int:
        calls.append(len(views))
        for v in views:
            out.extend(v)
        return sum(len(v) for v in views)

    assert write_all(write, BUFFERS) == len(JOINED)
    assert bytes(out) == JOINED and max(calls) == 2 and len(calls) == 3  # five non-empty buffers


def test_a_write_that_writes_nothing_raises_instead_of_looping() -> None:
    with pytest.raises(OSError, match="wrote nothing"):
        write_all(lambda views: 0, [b"abc"])
    assert write_all(lambda views: pytest.fail("nothing to write"), [b"", bytearray()]) == 0


def test_a_socket_and_a_file_receive_every_byte_in_order(tmp_path: Path) -> None:
    """More buffers than ``IOV_MAX`` and more bytes than a socket's buffer holds: ``sendmsg`` comes back short."""
    chunks = [bytes([i % 251]) * (1 + i % 4000) for i in range(vectored.IOV_MAX + 500)]
    expected = b"".join(chunks)
    left, right = socket.socketpair()
    received = bytearray()

    def read() -> None:
        while data := right.recv(1 << 16):
            received.extend(data)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert write_all(left.sendmsg, chunks) == len(expected)
    finally:
        left.close()
        reader.join(timeout=30)
        right.close()
    assert bytes(received) == expected

    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        assert write_all(lambda views: os.writev(fd, views), chunks) == len(expected)
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == expected
