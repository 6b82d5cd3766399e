"""Request limits: per-key rate limits (429) and size limits on every route (413, 414).

Rates are token buckets per key and per replica, kept in memory: a key's limit is what one replica grants it, so
behind N replicas a client gets up to N times as much. That is the usual trade for not putting a shared counter on
every request's path; a limit that must hold across replicas belongs in the load balancer.
"""

from __future__ import annotations

import threading
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from playnext.api.errors import error_response
from playnext.api.observability import first_header

MAX_URL_BYTES = 8 * 1024


class RateLimiter:
    def __init__(self, default_per_s: float, burst_s: float = 2.0) -> None:
        self.default_per_s, self.burst_s = default_per_s, burst_s
        self._buckets: dict[str, tuple[float, float]] = {}  # key id → (tokens, last refill)
        self._lock = threading.Lock()

    def allow(self, key_id: str, per_s: float | None) -> float:
        """0.0 when the request may go on, else the seconds until a token is free. ``per_s`` 0 means unlimited."""
        rate = self.default_per_s if per_s is None else per_s
        if rate <= 0:
            return 0.0
        capacity = max(rate * self.burst_s, 1.0)
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / rate


class SizeLimits:
    """413 for a declared body over ``max_body_bytes`` on any route (ingest also counts chunked bodies itself),
    414 for a URL over ``MAX_URL_BYTES``: before any route reads anything."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            url = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            if url > MAX_URL_BYTES:
                await error_response(414, "uri_too_long", f"the URL is {url} bytes; the limit is {MAX_URL_BYTES}")(
                    scope, receive, send
                )
                return
            declared = first_header(scope, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                message = f"the body is {int(declared)} bytes; the limit is {self.max_body_bytes}"
                await error_response(413, "too_large", message)(scope, receive, send)
                return
        await self.app(scope, receive, send)
