"""Bearer-key authentication: 401 without a valid key, 403 with one of the wrong scope, 429 over its rate limit."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from fastapi import Request

from playnext.api.errors import ApiError
from playnext.api.keys import ApiKey, KeyStore
from playnext.api.observability import first_header

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def require_scope(scope: str) -> Callable[[Request], ApiKey]:
    def check(request: Request) -> ApiKey:
        header = (first_header(request.scope, b"authorization") or b"").decode("latin-1")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>'", _CHALLENGE)
        store: KeyStore = request.app.state.keys
        key = store.verify(token.strip())
        if key is None:
            raise ApiError(401, "unauthorized", "the API key is unknown or revoked", _CHALLENGE)
        if not key.allows(scope):
            raise ApiError(403, "forbidden", f"this key lacks the '{scope}' scope (it has: {', '.join(key.scopes)})")
        wait = request.app.state.rate_limiter.allow(key.key_id, key.rate_per_s)
        if wait:
            raise ApiError(429, "rate_limited", f"this key is over its rate limit; retry in {wait:.2f} s",
                           {"Retry-After": str(max(1, math.ceil(wait)))})  # fmt: skip
        return key

    check.__name__ = f"require_{scope}"
    return check


def scope_dependency(scope: str) -> Callable[[Request], Awaitable[ApiKey]]:
    """``require_scope`` for ``Depends``. Async on purpose: FastAPI runs a sync dependency in its thread pool,
    and that hop cost more than everything else a precomputed surface does per request."""
    check = require_scope(scope)

    async def dependency(request: Request) -> ApiKey:
        return check(request)

    dependency.__name__ = check.__name__
    return dependency
