"""Request limits: per-key rate limits (429) and size limits on every route (413, 414).

Rates are token buckets per key and per replica, kept in memory: a key's limit is what one replica grants it, so
behind N replicas a client gets up to N times as much. That is the usual trade for not putting a shared counter on
every request's path; a limit that must hold across replicas belongs in the load balancer.
"""

from __future__ import annotations

import threading
import time

from starlette.responses import Response
from starlette.types import Scope

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


def refusal(scope: Scope, max_body_bytes: int) -> Response | None:
    """A 414 for a URL over ``MAX_URL_BYTES``, a 413 for a declared body over ``max_body_bytes`` (ingest also
    counts chunked bodies itself), checked before any route reads anything; None for a request within both."""
    url = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    if url > MAX_URL_BYTES:
        return error_response(414, "uri_too_long", f"the URL is {url} bytes; the limit is {MAX_URL_BYTES}")
    declared = first_header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        return error_response(413, "too_large", f"the body is {int(declared)} bytes; the limit is {max_body_bytes}")
    return None
