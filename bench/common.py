"""What the serving benchmarks share: a lean keep-alive HTTP client and the simulated, trained world they load."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e import env_for, playnext

# A serving-sized stack: content is left out and SASRec trained for one epoch of one window per listener, to keep
# the training short; serving costs the same.
GENERATORS = '["popularity", "popularity_country", "als", "cooccurrence", "sasrec"]'
PARAMS = '{"sasrec": {"epochs": 1, "max_windows": 1}}'


async def request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, path: str,
                  headers: str, body: bytes = b"") -> int:  # fmt: skip
    """One HTTP/1.1 request on an open connection; the status (the body is read and dropped). Leaner than an
    HTTP client library, so the client's own cost stays small beside the server's."""
    extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else ""
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: bench\r\n{headers}{extra}\r\n".encode() + body)
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a supervisor's workers), as ``/proc`` lists them now; one that exited while
    being looked at has none."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return [pid]
    return [pid, *(p for child in children for p in process_tree(int(child)))]


def world(data: Path, users: int, tracks: int, days: int, *, batch: bool = True) -> dict[str, str]:
    """The environment of a world in ``data``: simulated and trained unless a model is already promoted there,
    then precomputed (``batch``). Prints what each step took."""
    env = env_for(data, models__generators=GENERATORS, models__params=PARAMS)
    if not (data / "models" / "CURRENT").exists():
        t0 = time.perf_counter()
        playnext("simulate", "--users", str(users), "--tracks", str(tracks), "--days", str(days), env=env,
                 timeout=3600)  # fmt: skip
        t1 = time.perf_counter()
        playnext("train", "--promote", env=env, timeout=7200)
        print(f"simulated in {t1 - t0:.0f} s, trained in {time.perf_counter() - t1:.0f} s", flush=True)
    if batch:
        t2 = time.perf_counter()
        print(playnext("batch", "all", env=env, timeout=7200).stdout.strip(), flush=True)
        print(f"precomputed in {time.perf_counter() - t2:.0f} s", flush=True)
    return env
