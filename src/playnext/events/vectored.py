"""Writing many buffers whole, one system call per ``IOV_MAX`` of them (``os.writev``, a socket's ``sendmsg``).

The log's two busiest hand-offs carry many NDJSON chunks at once: the exposures a serving worker gathered for 20 ms
(hundreds of answers' lines) to its writer, and the writer's round to its segment. Joined into one buffer first,
each hand-off copied the whole round into freshly allocated memory, a page fault every 4 KB, and the worker then
encoded and framed that copy twice more before sending it: measured in a loop paced like a serving worker on the
100k world (about 200 Daily Mix answers of 3.5 KB every 20 ms), 6 µs of the worker's CPU per answer went to that
flush, 4.5 of it to the three copies. Written as they are, the chunks are copied once, by the kernel.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

IOV_MAX = os.sysconf("SC_IOV_MAX")  # buffers one call takes (1024 on Linux)
Buffer = bytes | bytearray | memoryview


def write_all(write: Callable[[list[memoryview]], int], buffers: Sequence[Buffer]) -> int:
    """Call ``write`` with the buffers still unwritten (at most ``IOV_MAX`` at a time) until every byte is written,
    in order; the bytes written. A short write (a signal, a full socket buffer, a file at its limit) goes on from
    the byte where it stopped; one that writes nothing raises, as an endless loop would follow."""
    views = [memoryview(b) for b in buffers if len(b)]
    total, at = 0, 0
    while at < len(views):
        written = write(views[at : at + IOV_MAX])
        if written <= 0:
            raise OSError(f"a write of {sum(map(len, views[at:]))} bytes wrote nothing")
        total += written
        while at < len(views) and written >= len(views[at]):
            written -= len(views[at])
            at += 1
        if written:
            views[at] = views[at][written:]
    return total
