"""uvicorn's HTTP protocol (httptools) with each response's head and body sent in one write.

uvicorn writes a response's status line and headers when the app starts the response, then its body when the app
sends it: two ``send`` system calls, so two packets, per answer. A client waiting on the answer wakes for the first,
finds no body, and sleeps again until the second; the server pays for both sends and both wake-ups. That cost is
per answer, not per byte, and it weighed most on the routes whose clients wait longest: measured with
``bench/serving.py`` (two workers, alternating runs in one session), Discover Weekly went from 0.50-0.55 to
0.57-0.63 × the hello-world at 8 connections on the 10k world, and from 0.45-0.49 to 0.50-0.52 on the 100k world
(Daily Mix: 0.41-0.43 to 0.44-0.47), with the client's own cost per answer down by a sixth; at 32 connections
nothing moved beyond the noise, nor did the hello-world, on the same server and protocol.

Here the transport holds a write when none is held, and sends it joined with the next write, or at the end of the
event loop's turn if none comes: an answer's head goes out with its body, a streamed answer's head still goes out
before it waits for its first chunk, and a 100 Continue is not held back. Every other part is uvicorn's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class OneWriteTransport(asyncio.Transport):
    """A connection's transport, holding at most one write until the next write or the end of the loop's turn."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport, self._loop = transport, loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:  # type: ignore[override]
        if self._held is None:
            self._held = bytes(data)
            self._loop.call_soon(self._release)
            return
        held, self._held = self._held, None
        self._transport.write(held + data)

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._release()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self._release()
        self._transport.write_eof()


class OneWriteProtocol(HttpToolsProtocol):
    """``--http playnext.api.one_write:OneWriteProtocol``: what ``playnext serve`` runs (``api.app.SERVER``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(OneWriteTransport(transport, self.loop))
