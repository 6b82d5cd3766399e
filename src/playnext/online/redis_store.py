"""The scaled-out online store: Redis, shared by many stateless API replicas and the batch jobs.

Per listener, two keys, so that forgetting a listener is one ``DEL`` and no scan:

- ``{prefix}lists:{user}``: a hash of surface → encoded list;
- ``{prefix}plays:{user}``: a sorted set of plays scored by time, trimmed to the newest ``keep``.

A request must never stall on a Redis that is gone: commands time out after ``timeout_s``, and after a failure the
store answers ``StoreUnavailable`` at once for ``cooldown_s`` (surfaces then degrade, see ``api.lists``) before it
tries Redis again, so service recovers by itself within a cooldown of Redis coming back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any

import msgspec
import redis
from redis.exceptions import RedisError

from playnext.online.store import OnlineStore, Play, SelectPlays, SkipListeners, StoreUnavailable

WRITE_CHUNK = 1_000  # commands per pipeline round trip in bulk writes


class RedisStore(OnlineStore):
    remote = True

    def __init__(
        self, url: str, *, keep: int = 100, prefix: str = "playnext:", timeout_s: float = 0.25,
        cooldown_s: float = 1.0,
    ) -> None:  # fmt: skip
        self.url, self.keep, self.prefix, self.cooldown_s = url, keep, prefix, cooldown_s
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
        )
        self._down_until = 0.0
        self._lock = threading.Lock()

    def _lists(self, user_id: str) -> str:
        return f"{self.prefix}lists:{user_id}"

    def _plays(self, user_id: str) -> str:
        return f"{self.prefix}plays:{user_id}"

    def _call(self, what: str, command: Callable[[], Any]) -> Any:
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(f"Redis at {self.url} failed moments ago; retrying after the cooldown")
        try:
            return command()
        except RedisError as exc:
            with self._lock:
                self._down_until = time.monotonic() + self.cooldown_s
            raise StoreUnavailable(f"Redis at {self.url}: {what}: {exc}") from exc

    def put_lists(self, surface: str, lists: Iterable[tuple[str, bytes]], skip: SkipListeners | None = None) -> int:
        rows = iter(lists)
        written = 0
        while chunk := list(islice(rows, WRITE_CHUNK)):
            # Asked just before the chunk is sent: Redis has no transaction to hold a forget's DEL off meanwhile.
            if skip is not None and (skipped := skip([user for user, _ in chunk])):
                chunk = [row for row in chunk if row[0] not in skipped]

            def write(chunk: list[tuple[str, bytes]] = chunk) -> None:
                pipe = self._client.pipeline(transaction=False)
                for user, value in chunk:
                    pipe.hset(self._lists(user), surface, value)
                pipe.execute()

            self._call("writing lists", write)
            written += len(chunk)
        return written

    def get_list(self, surface: str, user_id: str) -> bytes | None:
        return self._call("reading a list", lambda: self._client.hget(self._lists(user_id), surface))

    def add_plays(self, plays: Sequence[Play], select: SelectPlays | None = None) -> None:
        if select is not None:
            plays = select(list(plays))  # just before they are sent, as in ``put_lists``
        if not plays:
            return
        by_user: dict[str, dict[bytes, float]] = {}
        for p in plays:
            by_user.setdefault(p.user_id, {})[msgspec.msgpack.encode((p.item_id, p.ts, p.skipped))] = p.ts

        def write() -> None:
            pipe = self._client.pipeline(transaction=False)
            for user, members in by_user.items():
                pipe.zadd(self._plays(user), members)
                pipe.zremrangebyrank(self._plays(user), 0, -(self.keep + 1))
            pipe.execute()

        self._call("adding plays", write)

    def recent_plays(self, user_id: str, limit: int) -> list[Play]:
        members = self._call("reading plays", lambda: self._client.zrange(self._plays(user_id), -limit, -1))
        out = []
        for member in members:
            item, ts, skipped = msgspec.msgpack.decode(member)
            out.append(Play(user_id, item, float(ts), bool(skipped)))
        return out

    def forget(self, user_id: str) -> None:
        self._call("forgetting", lambda: self._client.delete(self._lists(user_id), self._plays(user_id)))

    def ping(self) -> None:
        self._call("ping", self._client.ping)

    def close(self) -> None:
        self._client.close()
