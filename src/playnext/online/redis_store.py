"""The scaled-out online store: Redis, shared by many stateless API replicas and the batch jobs.

Per listener, two keys, so that forgetting a listener is one ``DEL`` and no scan:

- ``{prefix}lists:{user}``: a hash of surface → encoded list;
- ``{prefix}plays:{user}``: a sorted set of plays scored by time, trimmed to the newest ``keep``;
- ``{prefix}forgotten:{digest}``: for an hour after a forget, the Redis time it happened (the tombstone's digest,
  never the id).

A forget and a write must not interleave so that the write brings deleted data back. ``put_lists`` asks ``skip``
(and ``add_plays`` asks ``select``) whom to leave out, but a forget can land between that question and the write,
and Redis has no transaction for the forget's ``DEL`` to wait on. So every write runs as a script that first
compares the listener's forget mark with the Redis time read before the question was asked, and writes nothing for
a listener forgotten since: the forget either happened before the question (the tombstone answers it), after it
(the mark stops the write) or after the write (its ``DEL`` removes it). The forget itself is a script too, so its
mark and its ``DEL`` are one step.

Requests read on the event loop through ``redis.asyncio`` (one client per loop), so a read costs no thread hop:
with a worker thread per read, Discover Weekly answered 1,981 and 2,038 requests/s at 8 connections on this
machine, awaited on the loop 3,822 and 2,838 (``bench/serving.py --redis``, two runs each, Redis on loopback).
Writes (batch, sessions, forgets) run off the loop already and use the blocking client.

A request must never stall on a Redis that is gone: commands time out after ``timeout_s``, and after a failure the
store answers ``StoreUnavailable`` at once for ``cooldown_s`` (surfaces then degrade, see ``api.lists``) before it
tries Redis again, so service recovers by itself within a cooldown of Redis coming back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from itertools import islice
from typing import Any

import msgspec
import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from playnext.online.store import OnlineStore, Play, SelectPlays, SkipListeners, StoreUnavailable
from playnext.privacy.tombstones import digest

WRITE_CHUNK = 1_000  # commands per pipeline round trip in bulk writes
MARK_S = 3_600  # how long a forget's mark is kept: far longer than one chunk's question and write

# KEYS: the listener's lists, plays and forget mark; ARGV[1]: how long the mark is kept.
_FORGET = """
local t = redis.call('TIME')  -- in microseconds, as ``RedisStore._now``
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], t[1] * 1000000 + t[2], 'EX', ARGV[1])
"""
# KEYS: the key written, the listener's forget mark; ARGV[1]: the Redis time before ``skip`` was asked.
_UNLESS_FORGOTTEN = """
local mark = redis.call('GET', KEYS[2])
if mark and tonumber(mark) >= tonumber(ARGV[1]) then return 0 end
"""
# ARGV[2], ARGV[3]: the surface and its list.
_PUT_LIST = f"{_UNLESS_FORGOTTEN} redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) return 1"
# ARGV[2]: how many plays to keep; then score, member pairs.
_ADD_PLAYS = f"""{_UNLESS_FORGOTTEN}
redis.call('ZADD', KEYS[1], unpack(ARGV, 3))
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[2]) + 1))
return 1
"""


class RedisStore(OnlineStore):
    def __init__(
        self, url: str, *, keep: int = 100, prefix: str = "playnext:", timeout_s: float = 0.25,
        cooldown_s: float = 1.0,
    ) -> None:  # fmt: skip
        self.url, self.keep, self.prefix, self.cooldown_s = url, keep, prefix, cooldown_s
        self._options = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s, "retry_on_timeout": False}
        self._client = redis.Redis.from_url(url, **self._options)
        # An asyncio client's connections belong to the loop that opened them.
        self._async: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._forget = self._client.register_script(_FORGET)
        self._put_list = self._client.register_script(_PUT_LIST)
        self._add_plays = self._client.register_script(_ADD_PLAYS)

    def _lists(self, user_id: str) -> str:
        return f"{self.prefix}lists:{user_id}"

    def _plays(self, user_id: str) -> str:
        return f"{self.prefix}plays:{user_id}"

    def _mark(self, user_id: str) -> str:
        return f"{self.prefix}forgotten:{digest(user_id)}"

    def _now(self) -> int:
        """Redis's time in microseconds: one clock for the forget marks and the writes, whatever the hosts' say."""
        seconds, micros = self._call("reading the time", self._client.time)
        return seconds * 1_000_000 + micros

    def _check_cooldown(self) -> None:
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(f"Redis at {self.url} failed moments ago; retrying after the cooldown")

    def _failed(self, what: str, exc: Exception) -> StoreUnavailable:
        with self._lock:
            self._down_until = time.monotonic() + self.cooldown_s
        return StoreUnavailable(f"Redis at {self.url}: {what}: {exc}")

    def _call(self, what: str, command: Callable[[], Any]) -> Any:
        self._check_cooldown()
        try:
            return command()
        except RedisError as exc:
            raise self._failed(what, exc) from exc

    async def _acall(self, what: str, command: Callable[[redis.asyncio.Redis], Awaitable[Any]]) -> Any:
        self._check_cooldown()
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            # One retry on a broken connection, at once: unlike the blocking client's pool, the asyncio one hands
            # out a connection Redis closed (a restart) without noticing, and the read would fail on it. Not on a
            # timeout: a slow Redis costs a request ``timeout_s`` once, not twice.
            client = self._async[loop] = redis.asyncio.Redis.from_url(
                self.url, **self._options, retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError]
            )
        try:
            return await command(client)
        except RedisError as exc:
            raise self._failed(what, exc) from exc

    def put_lists(self, surface: str, lists: Iterable[tuple[str, bytes]], skip: SkipListeners | None = None) -> int:
        rows = iter(lists)
        written = 0
        while chunk := list(islice(rows, WRITE_CHUNK)):
            asked_at = self._now()
            if skip is not None and (skipped := skip([user for user, _ in chunk])):
                chunk = [row for row in chunk if row[0] not in skipped]

            def write(chunk: list[tuple[str, bytes]] = chunk, asked_at: int = asked_at) -> int:
                pipe = self._client.pipeline(transaction=False)
                for user, value in chunk:
                    self._put_list(keys=[self._lists(user), self._mark(user)], args=[asked_at, surface, value],
                                   client=pipe)  # fmt: skip
                return sum(pipe.execute())

            written += self._call("writing lists", write)
        return written

    def get_list(self, surface: str, user_id: str) -> bytes | None:
        return self._call("reading a list", lambda: self._client.hget(self._lists(user_id), surface))

    async def read_list(self, surface: str, user_id: str) -> bytes | None:
        return await self._acall("reading a list", lambda client: client.hget(self._lists(user_id), surface))

    def add_plays(self, plays: Sequence[Play], select: SelectPlays | None = None) -> None:
        if not plays:
            return
        asked_at = self._now()
        if select is not None:
            plays = select(list(plays))
        by_user: dict[str, list[Play]] = {}
        for p in plays:
            by_user.setdefault(p.user_id, []).append(p)
        if not by_user:
            return
        # Only each listener's newest ``keep`` can stay, so no more are sent: the script's arguments stay bounded.
        scored = {
            user: [x for p in sorted(mine, key=lambda p: p.ts)[-self.keep :]
                   for x in (p.ts, msgspec.msgpack.encode((p.item_id, p.ts, p.skipped)))]
            for user, mine in by_user.items()
        }  # fmt: skip

        def write() -> None:
            pipe = self._client.pipeline(transaction=False)
            for user, args in scored.items():
                self._add_plays(keys=[self._plays(user), self._mark(user)], args=[asked_at, self.keep, *args],
                                client=pipe)  # fmt: skip
            pipe.execute()

        self._call("adding plays", write)

    def recent_plays(self, user_id: str, limit: int) -> list[Play]:
        members = self._call("reading plays", lambda: self._client.zrange(self._plays(user_id), -limit, -1))
        return _plays(user_id, members)

    async def read_recent_plays(self, user_id: str, limit: int) -> list[Play]:
        members = await self._acall("reading plays", lambda client: client.zrange(self._plays(user_id), -limit, -1))
        return _plays(user_id, members)

    def forget(self, user_id: str) -> None:
        keys = [self._lists(user_id), self._plays(user_id), self._mark(user_id)]
        self._call("forgetting", lambda: self._forget(keys=keys, args=[MARK_S]))

    def ping(self) -> None:
        self._call("ping", self._client.ping)

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        self.close()


def _plays(user_id: str, members: list[bytes]) -> list[Play]:
    out = []
    for member in members:
        item, ts, skipped = msgspec.msgpack.decode(member)
        out.append(Play(user_id, item, float(ts), bool(skipped)))
    return out
