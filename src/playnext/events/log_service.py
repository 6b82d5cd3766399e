"""The event log served to other processes: one writer, several serving workers (``playnext serve --workers N``).

Why it looks like this:
- **Still one writer.** Dedup, group commit and the order of segments live in the writer, and Python answers one
  request at a time per process. So with several workers the supervising process owns the log
  (``LogService``) and every worker reaches it over a local socket (``RemoteLog``): a retried event meets the
  same dedup whichever worker takes it, and the log keeps one fsync per round for all of them.
- **Workers encode, the writer only frames.** A worker validates and encodes its events as NDJSON, as it would
  for its own log; the writer checks that the lines frame (one per id) and writes them, so the one process all
  workers share does as little per event as it can.
- **Exposures ride in batches.** A worker gathers the exposures of its answers for ``GATHER_S`` (20 ms) and sends
  them as one message; the writer puts them in its next round, like its own process's. Sent per answer instead,
  they cost the supervisor 25 µs per Discover Weekly answer, gathered 18 µs (``/proc``, 2 workers, 8 connections).
- **Private.** The socket lives in a directory only this user can enter: whatever connects can append to the log.
- **A worker without its writer stops.** Nothing can be logged without it (ingest and surfaces answer 503), so a
  worker whose connection drops (the supervisor died) says so and shuts down instead of holding the port.

Messages are MessagePack, each behind its length (4 bytes, big-endian). Worker to writer: ``Submit``, ``Fresh``,
``Rotate``, ``Stats``, each with a sequence number; the writer answers each with ``Done`` or ``Failed``. A ``Fresh``
is followed by its lines, raw: the worker sends the answers' chunks as they are, in one ``sendmsg``, and the writer
reads them into the buffer it logs (``events.vectored``). Joined, MessagePack-encoded and framed into one buffer
first, they cost a worker 8.3 µs per Daily Mix answer on the 100k world, against 4.0 µs sent as they are (a loop
paced like a serving worker, 200 answers every 20 ms; 0.6 µs of each is the loop's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

import msgspec

from playnext.events.log import EventLog, LogStats, LogUnavailable, check_lines
from playnext.events.schema import Event, encode_lines
from playnext.events.vectored import write_all

log = logging.getLogger(__name__)

# Ingest bodies are at most ``max_body_bytes`` (8 MiB by default): a message far larger is a broken peer.
MAX_MESSAGE = 256 * 1024 * 1024
_HEADER = struct.Struct(">I")
# A worker sends the exposures it gathered at most this often. Each message's answer wakes the worker's reader
# thread, which then waits for the GIL while the event loop serves, woken in vain at each of the loop's releases
# (see ``EventLog.fresh_interval_s``): at 2 ms that cost Discover Weekly 15 % of its rate at 8 connections. The
# writer's own rounds are 50 ms apart anyway.
GATHER_S = 0.02


class Submit(msgspec.Struct, tag=True, array_like=True):
    seq: int
    ids: list[str]
    ndjson: bytes


class Fresh(msgspec.Struct, tag=True, array_like=True):
    """``size`` bytes of NDJSON (``count`` lines) follow this message on the stream, raw: the worker sends its
    gathered chunks as they are and the writer reads them into the one buffer it logs (``events.vectored``)."""

    seq: int
    count: int
    size: int


class Rotate(msgspec.Struct, tag=True, array_like=True):
    seq: int


class Stats(msgspec.Struct, tag=True, array_like=True):
    seq: int


class Done(msgspec.Struct, tag=True, array_like=True):
    seq: int
    verdicts: list[bool] | None = None
    value: int | None = None
    stats: LogStats | None = None


class Failed(msgspec.Struct, tag=True, array_like=True):
    seq: int
    message: str


_REQUESTS = msgspec.msgpack.Decoder(Submit | Fresh | Rotate | Stats)
_ANSWERS = msgspec.msgpack.Decoder(Done | Failed)
_ENCODER = msgspec.msgpack.Encoder()


def _send(sock: socket.socket, lock: threading.Lock, message: msgspec.Struct, raw: Sequence[bytes] = ()) -> None:
    """``message``, then ``raw`` (a ``Fresh``'s lines) as they are."""
    body = _ENCODER.encode(message)
    with lock:
        write_all(sock.sendmsg, [_HEADER.pack(len(body)), body, *raw])


def _receive(sock: socket.socket) -> bytearray | None:
    """One message's body; None at a clean end of the stream."""
    header = _read_exactly(sock, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    return _read_body(sock, size)


def _read_body(sock: socket.socket, size: int) -> bytearray:
    """``size`` bytes that must follow on the stream (a message, a ``Fresh``'s lines)."""
    if not 0 <= size <= MAX_MESSAGE:
        raise ValueError(f"a message of {size:,} bytes is over the {MAX_MESSAGE:,}-byte limit")
    body = _read_exactly(sock, size)
    if body is None:
        raise ConnectionError("the stream ended inside a message")
    return body


def _read_exactly(sock: socket.socket, size: int) -> bytearray | None:
    """The buffer itself, not a copy: a ``Fresh``'s lines go on to the log as read."""
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            if got == 0:
                return None
            raise ConnectionError("the stream ended inside a message")
        got += n
    return buffer


class LogService:
    """Serves an open ``EventLog`` on a Unix socket at ``path``: a thread per connected worker."""

    def __init__(self, event_log: EventLog, path: Path) -> None:
        self.event_log, self.path = event_log, Path(path)
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> LogService:
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        self.path.chmod(0o600)
        listener.listen(64)
        self._listener = listener
        thread = threading.Thread(target=self._accept, name="playnext-log-service", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def close(self) -> None:
        """Stop taking messages. What the log accepted before is written by its own ``close``."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=10)
        self.path.unlink(missing_ok=True)

    @property
    def connections(self) -> int:
        return len(self._connections)

    def _accept(self) -> None:
        assert self._listener is not None
        listener = self._listener
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._connections.add(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name="playnext-log-peer", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        lock = threading.Lock()

        def answer(message: msgspec.Struct) -> None:
            with contextlib.suppress(OSError):  # the worker is gone; what it sent is in the log or failed with it
                _send(conn, lock, message)

        def when_done(seq: int, verdicts: bool) -> Callable[[Future], None]:  # type: ignore[type-arg]
            def done(future: Future) -> None:  # type: ignore[type-arg]
                if future.exception() is not None:
                    answer(Failed(seq, str(future.exception())))
                else:
                    answer(Done(seq, verdicts=future.result() if verdicts else None))

            return done

        try:
            while (body := _receive(conn)) is not None:
                message = _REQUESTS.decode(body)
                # A Fresh's lines are read whatever becomes of it, or the stream would go on from inside them; a
                # size over the limit drops the peer, like any message over it.
                lines = _read_body(conn, message.size) if isinstance(message, Fresh) else bytearray()
                try:
                    if isinstance(message, Submit):
                        future = self.event_log.submit_encoded(message.ids, message.ndjson)
                        future.add_done_callback(when_done(message.seq, True))
                    elif isinstance(message, Fresh):
                        fresh = self.event_log.submit_fresh_encoded(lines, message.count)
                        fresh.add_done_callback(when_done(message.seq, False))
                    elif isinstance(message, Rotate):  # waits for the writer's round: not on this thread
                        threading.Thread(target=self._rotate, args=(message.seq, answer), daemon=True).start()
                    else:
                        answer(Done(message.seq, stats=self.event_log.stats))
                except ValueError as exc:  # lines that do not frame: refused, the log untouched
                    answer(Failed(message.seq, str(exc)))
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            log.warning("dropped a log client that sent something unreadable: %s", exc)
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def _rotate(self, seq: int, answer: Callable[[msgspec.Struct], None]) -> None:
        try:
            answer(Done(seq, value=self.event_log.rotate()))
        except Exception as exc:
            answer(Failed(seq, str(exc)))


class RemoteLog:
    """The ``EventLog`` a serving worker uses: the same calls, answered by the ``LogService``'s writer.

    ``submit`` and ``rotate`` go out at once. ``submit_fresh`` gathers the calls of ``gather_s`` on the running
    event loop into one message (outside a loop, each call is sent at once). ``on_lost`` runs, once, on the reader
    thread when the connection drops while the log is open."""

    def __init__(self, path: Path, on_lost: Callable[[], None] | None = None, timeout_s: float = 30.0,
                 gather_s: float = GATHER_S) -> None:  # fmt: skip
        self.path, self.on_lost, self.timeout_s, self.gather_s = Path(path), on_lost, timeout_s, gather_s
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._state = threading.Lock()  # the maps and counters below: the loop's thread and the reader's
        self._seq = 0
        # seq → (future, exposures it carries, the message's type): the type says what its answer resolves to
        self._waiting: dict[int, tuple[Future, int, type]] = {}  # type: ignore[type-arg]
        self._fresh: list[bytes] = []  # each answer's lines, sent as they are (``Fresh``)
        self._fresh_count = 0
        self._fresh_future: Future[None] = Future()
        self._fresh_unacked = 0  # exposures gathered or sent, not yet on disk
        self._flush_scheduled = False
        self._failed: BaseException | None = None
        self._closed = True
        self._reader: threading.Thread | None = None
        self._stats = LogStats()

    def open(self) -> RemoteLog:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            raise LogUnavailable(f"no event log writer at {self.path}: {exc}") from exc
        self._sock, self._closed = sock, False
        self._reader = threading.Thread(target=self._read, name="playnext-log-client", daemon=True)
        self._reader.start()
        return self

    def close(self) -> None:
        """Send what is gathered and wait (``timeout_s`` at most) for the writer to answer all of it."""
        if self._closed:
            return
        self._flush()
        with self._state:
            pending = [future for future, _, _ in self._waiting.values()]
        for future in pending:
            with contextlib.suppress(Exception):
                future.result(timeout=self.timeout_s)
        self._closed = True
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        if self._reader is not None:
            self._reader.join(timeout=self.timeout_s)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._fail_waiting(LogUnavailable("the event log client closed"))

    # -- the EventLog calls the app makes ------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return not self._closed and self._failed is None

    @property
    def stats(self) -> LogStats:
        """The writer's counters (asked for at each call: a scrape); the last known ones when it cannot answer."""
        with contextlib.suppress(LogUnavailable, TimeoutError):
            found = self._request(Stats(0)).result(timeout=2.0)
            if found.stats is not None:
                self._stats = found.stats
        return self._stats

    def backlog(self) -> int:
        """Batches of events sent and not yet answered (read at a scrape, so counted then)."""
        with self._state:
            return sum(kind is Submit for _, _, kind in self._waiting.values())

    def fresh_backlog(self) -> int:
        return self._fresh_unacked

    def submit(self, events: Sequence[Event]) -> Future[list[bool]]:
        return self._request(Submit(0, [e.event_id for e in events], encode_lines(events)))

    def submit_fresh(self, records: Sequence[msgspec.Struct]) -> Future[None]:
        return self._gather(encode_lines(records), len(records))

    def submit_fresh_encoded(self, ndjson: bytes, count: int) -> Future[None]:
        """``submit_fresh`` for ``count`` records encoded already (a rendered answer's, ``surfaces.rendered``):
        checked here, so that one bad answer fails alone and not the whole gathered message at the writer."""
        check_lines(ndjson, count)
        return self._gather(ndjson, count)

    def _gather(self, ndjson: bytes, count: int) -> Future[None]:
        if (unavailable := self._unavailable()) is not None:
            failed: Future[None] = Future()
            failed.set_exception(unavailable)
            return failed
        with self._state:
            self._fresh.append(ndjson)
            self._fresh_count += count
            self._fresh_unacked += count
            future = self._fresh_future
            schedule = not self._flush_scheduled
            self._flush_scheduled = True
        if schedule:
            try:
                asyncio.get_running_loop().call_later(self.gather_s, self._flush)
            except RuntimeError:  # no loop here: send now
                self._flush()
        return future

    def rotate(self) -> int:
        done = self._request(Rotate(0)).result(timeout=self.timeout_s)
        assert done.value is not None
        return done.value

    # -- the wire ------------------------------------------------------------------------------------------

    def _unavailable(self) -> LogUnavailable | None:
        if self._closed:
            return LogUnavailable("the event log client is closed")
        if self._failed is not None:
            return LogUnavailable(f"lost the event log writer: {self._failed}")
        return None

    def _flush(self) -> None:
        with self._state:
            self._flush_scheduled = False
            if not self._fresh_count:
                return
            chunks, count, future = self._fresh, self._fresh_count, self._fresh_future
            self._fresh, self._fresh_count, self._fresh_future = [], 0, Future()
        self._request(Fresh(0, count, sum(map(len, chunks))), future, count, chunks)

    def _request(self, message: Submit | Fresh | Rotate | Stats, future: Future | None = None,  # type: ignore[type-arg]
                 exposures: int = 0, lines: Sequence[bytes] = ()) -> Future:  # type: ignore[type-arg]  # fmt: skip
        """``lines``: a ``Fresh``'s, ``message.size`` bytes in all."""
        future = future if future is not None else Future()
        if (unavailable := self._unavailable()) is not None:
            self._settle(future, exposures, unavailable)
            return future
        with self._state:
            self._seq += 1
            message.seq = self._seq
            self._waiting[message.seq] = (future, exposures, type(message))
        try:
            assert self._sock is not None
            _send(self._sock, self._send_lock, message, lines)
        except OSError as exc:
            with self._state:
                self._waiting.pop(message.seq, None)
            self._settle(future, exposures, LogUnavailable(f"writing to the event log writer failed: {exc}"))
        return future

    def _settle(self, future: Future, exposures: int, error: BaseException | None,  # type: ignore[type-arg]
                result: object = None) -> None:  # fmt: skip
        if exposures:
            with self._state:
                self._fresh_unacked -= exposures
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def _read(self) -> None:
        assert self._sock is not None
        try:
            while (body := _receive(self._sock)) is not None:
                answer = _ANSWERS.decode(body)
                with self._state:
                    future, exposures, kind = self._waiting.pop(answer.seq, (None, 0, Stats))
                if future is None:
                    continue  # answered after this client gave up on it
                if isinstance(answer, Failed):
                    self._settle(future, exposures, LogUnavailable(answer.message))
                else:  # as the log's own futures resolve: verdicts for events, None for exposures
                    result = answer.verdicts if kind is Submit else None if kind is Fresh else answer
                    self._settle(future, exposures, None, result)
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            if not self._closed:
                self._failed = exc
        if not self._closed:
            self._failed = self._failed or ConnectionError("the event log writer closed the connection")
            self._fail_waiting(LogUnavailable(f"lost the event log writer: {self._failed}"))
            log.error("lost the event log writer at %s: %s", self.path, self._failed)
            if self.on_lost is not None:
                self.on_lost()

    def _fail_waiting(self, error: LogUnavailable) -> None:
        with self._state:
            waiting, self._waiting = self._waiting, {}
        for future, exposures, _ in waiting.values():
            self._settle(future, exposures, error)


AnyLog = EventLog | RemoteLog  # what the app writes to: its own log, or its supervisor's
