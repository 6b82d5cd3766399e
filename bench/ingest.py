"""Acknowledged events/s through HTTP, beside a raw append+fsync loop of the same bytes, measured in one run.

    python bench/ingest.py [--seconds 4] [--concurrency 1 8 32] [--batch 1 500]

The server is the real ``playnext serve`` (uvicorn, one process) on a temporary data directory; the load comes
from asyncio clients in this process. The baseline writes the very bytes the log would store for each batch
(canonical NDJSON) with one fdatasync per batch, sequentially: what a disk does with no HTTP, no validation, no
dedup and no group commit. Ratios, not absolute figures, are comparable across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e import Server, env_for, playnext

from playnext.events.schema import EVENT_DECODER, encode_lines

TEMPLATE = (
    '{{"type":"play","event_id":"{id}","user_id":"u{user}","ts":"2026-11-20T10:00:00Z",'
    '"item_id":"t{item}","item_type":"track","ms_played":183000,"reason_end":"trackdone","country":"SE"}}'
)


def batch_body(prefix: str, n: int) -> bytes:
    return (
        "[" + ",".join(TEMPLATE.format(id=f"{prefix}-{i}", user=i % 997, item=i % 4999) for i in range(n)) + "]"
    ).encode()


class Bodies:
    """Unique bodies at C speed: one template per batch size, its id prefix swapped by ``bytes.replace``, so the
    load generator spends its share of the two cores on sending, not on formatting JSON."""

    MARK = b"@@@@@@@@@@@@@@@@"

    def __init__(self, n: int) -> None:
        self.template = batch_body(self.MARK.decode(), n)

    def make(self, tag: str) -> bytes:
        return self.template.replace(self.MARK, tag.encode().ljust(len(self.MARK), b"_")[: len(self.MARK)])


def raw_loop(directory: Path, batch: int, seconds: float) -> float:
    """Events/s of write(canonical bytes) + fdatasync per batch: the disk's own pace for this batch size."""
    events = [
        EVENT_DECODER.decode(line) for line in msgspec.json.decode(batch_body("raw", batch), type=list[msgspec.Raw])
    ]
    payload = encode_lines(events)
    fd = os.open(directory / f"raw-{batch}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    n, start = 0, time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            os.write(fd, payload)
            os.fdatasync(fd)
            n += batch
    finally:
        os.close(fd)
    return n / (time.perf_counter() - start)


class Connection:
    """A bare keep-alive HTTP/1.1 connection. httpx's pool tops out near 1,000 requests/s on this machine and
    collapses with 32 connections, which would measure the client, not the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def post(self, path: str, body: bytes, headers: str) -> tuple[int, bytes]:
        head = f"POST {path} HTTP/1.1\r\nHost: bench\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def http_load(
    port: int, key: str, concurrency: int, batch: int, seconds: float, tag: str
) -> tuple[float, list[float]]:
    headers = f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
    latencies: list[float] = []
    acked = 0
    deadline = time.perf_counter() + seconds

    bodies = Bodies(batch)

    async def client(c: int) -> None:
        nonlocal acked
        conn = await Connection.open("127.0.0.1", port)
        k = 0
        try:
            while time.perf_counter() < deadline:
                body = bodies.make(f"{tag}{c}x{k}")
                k += 1
                t0 = time.perf_counter()
                status, answer = await conn.post("/v1/events", body, headers)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {answer[:200]!r}")
                acked += msgspec.json.decode(answer)["accepted"]
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(concurrency)))
    return acked / (time.perf_counter() - start), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 500])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="playnext-bench-") as tmp:
        tmp_path = Path(tmp)
        env = env_for(tmp_path / "data")
        # Unlimited: the bench measures throughput, not the per-key rate limit (1,000 requests/s by default).
        key = playnext("keys", "create", "--scope", "ingest", "--rate", "0", "-q", env=env).stdout.strip()
        raw = {b: raw_loop(tmp_path, b, args.seconds) for b in args.batch}
        server = Server(env)
        rows = []
        try:
            for batch in args.batch:
                for concurrency in args.concurrency:
                    rate, lat = uvloop.run(
                        http_load(server.port, key, concurrency, batch, args.seconds, f"b{batch}c{concurrency}")
                    )
                    lat.sort()
                    rows.append((batch, concurrency, rate, statistics.median(lat), lat[int(0.99 * (len(lat) - 1))]))
        finally:
            server.stop()

    print(f"{'batch':>6} {'conns':>6} {'events/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'raw events/s':>13} {'ratio':>7}")
    for batch, concurrency, rate, p50, p99 in rows:
        print(
            f"{batch:>6} {concurrency:>6} {rate:>11,.0f} {p50 * 1000:>8.2f} {p99 * 1000:>8.2f} "
            f"{raw[batch]:>13,.0f} {rate / raw[batch]:>7.2f}"
        )
    print("ratio = acknowledged events/s through HTTP / raw append+fdatasync events/s of the same bytes, same run")


if __name__ == "__main__":
    main()
