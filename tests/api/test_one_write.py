"""Each answer's head and body leave in one write, and nothing uvicorn sends is lost, reordered or held back."""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from playnext.api.app import SERVER
from playnext.api.one_write import OneWriteProtocol, OneWriteTransport


class Recorded(asyncio.Transport):
    """The end of a connection: what was written to it, in order, and whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:  # type: ignore[override]
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0


def _held() -> tuple[Recorded, OneWriteTransport]:
    """A recorded connection end, and the transport writing to it from the running loop."""
    end = Recorded()
    return end, OneWriteTransport(end, asyncio.get_running_loop())


def on_a_loop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """An async test run on an event loop of its own (the project runs no async test plugin)."""

    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


@on_a_loop
async def test_a_head_and_its_body_in_the_same_turn_are_one_write() -> None:
    end, transport = _held()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert end.writes == []
    transport.write(memoryview(b"{}"))
    assert end.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await asyncio.sleep(0)  # the turn's end finds nothing held
    assert len(end.writes) == 1


@on_a_loop
async def test_a_lone_write_goes_out_at_the_end_of_the_turn_and_the_next_pair_is_joined_again() -> None:
    end, transport = _held()
    transport.write(b"head")
    await asyncio.sleep(0)
    assert end.writes == [b"head"]
    transport.write(b"chunk 1")
    transport.write(b"chunk 2")
    transport.write(b"chunk 3")
    assert end.writes == [b"head", b"chunk 1chunk 2"]
    await asyncio.sleep(0)
    assert end.writes == [b"head", b"chunk 1chunk 2", b"chunk 3"]
    assert transport.get_write_buffer_size() == 0


@on_a_loop
async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    end, transport = _held()
    transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    transport.close()
    assert end.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] and end.closed
    await asyncio.sleep(0)  # the turn's release finds the transport closed and sends nothing more
    assert len(end.writes) == 1

    end, transport = _held()
    transport.write(b"half an answer")
    transport.abort()
    await asyncio.sleep(0)
    assert end.writes == [] and end.aborted


def test_the_server_settings_name_this_protocol() -> None:
    config = uvicorn.Config(Starlette(), **SERVER)  # type: ignore[arg-type]
    config.load()
    assert config.http_protocol_class is OneWriteProtocol


# -- over a real connection -------------------------------------------------------------------------------------


async def small(request: Request) -> Response:
    return JSONResponse({"n": int(request.query_params.get("n", "0"))})


async def slow_stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        await asyncio.sleep(0.5)
        yield b"first,"
        yield b"second"

    return StreamingResponse(chunks(), media_type="text/plain")


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    app = Starlette(routes=[Route("/small", small, methods=["GET", "HEAD"]), Route("/stream", slow_stream),
                            Route("/echo", echo, methods=["POST"])])  # fmt: skip
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", access_log=False, **SERVER)  # type: ignore[arg-type]
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield sock.getsockname()[1]
    running.should_exit = True
    thread.join(10)


def _connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


class Reader:
    """A connection's bytes as they come, read up to a mark or a length; what is read past it is kept."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn, self.buffer = conn, b""

    def until(self, end: bytes) -> bytes:
        while end not in self.buffer:
            more = self.conn.recv(65536)
            assert more, f"connection closed; got {self.buffer!r}"
            self.buffer += more
        at = self.buffer.index(end) + len(end)
        found, self.buffer = self.buffer[:at], self.buffer[at:]
        return found

    def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            more = self.conn.recv(65536)
            assert more, "connection closed"
            self.buffer += more
        found, self.buffer = self.buffer[:n], self.buffer[n:]
        return found

    def answer(self) -> tuple[bytes, bytes]:
        """One answer with a content-length: its head and its body."""
        head = self.until(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))  # fmt: skip
        return head, self.exactly(length)


def test_keep_alive_answers_arrive_whole_and_in_order(server: int) -> None:
    with _connect(server) as conn:
        conn.sendall(b"".join(b"GET /small?n=%d HTTP/1.1\r\nHost: t\r\n\r\n" % n for n in range(3)))  # pipelined
        reader = Reader(conn)
        for n in range(3):
            head, body = reader.answer()
            assert head.startswith(b"HTTP/1.1 200 OK") and body == b'{"n":%d}' % n
        conn.sendall(b"HEAD /small HTTP/1.1\r\nHost: t\r\n\r\n")
        assert reader.until(b"\r\n\r\n").startswith(b"HTTP/1.1 200 OK")
        conn.sendall(b"GET /small?n=7 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert reader.answer()[1] == b'{"n":7}' and reader.buffer == b""  # nothing came with the HEAD's answer


def test_a_streamed_answer_sends_its_head_before_waiting_for_its_first_chunk(server: int) -> None:
    with _connect(server) as conn:
        conn.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        conn.settimeout(0.4)  # the first chunk comes after 0.5 s
        reader = Reader(conn)
        head = reader.until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK") and b"transfer-encoding: chunked" in head.lower()
        assert reader.buffer == b"", "a chunk came with the head: the head was held until it"
        conn.settimeout(5)
        rest = reader.until(b"0\r\n\r\n")
        assert b"first," in rest and b"second" in rest and rest.index(b"first,") < rest.index(b"second")


def test_100_continue_is_sent_before_the_body_is(server: int) -> None:
    with _connect(server) as conn:
        conn.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        conn.settimeout(2)
        reader = Reader(conn)
        assert reader.until(b"\r\n\r\n").startswith(b"HTTP/1.1 100 Continue")
        conn.sendall(b"hello")
        head, body = reader.answer()
        assert head.startswith(b"HTTP/1.1 200 OK") and body == b"hello"


def test_a_malformed_request_gets_its_400_and_the_connection_closes(server: int) -> None:
    with _connect(server) as conn:
        conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        got = b""
        while more := conn.recv(65536):
            got += more
        assert got.startswith(b"HTTP/1.1 400 Bad Request") and b"Invalid HTTP request" in got
