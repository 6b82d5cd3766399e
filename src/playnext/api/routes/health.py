"""Liveness and readiness for orchestrators: alive means the process answers; ready means it can store events.

The online store and the model are reported, not required: without them surfaces still answer (computed lists or
popularity, flagged ``fallback``), so failing readiness would take every replica out of the load balancer at once
for a fault they all share, turning a degraded service into an outage.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from playnext.online.store import StoreUnavailable

router = APIRouter()


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The service can accept events")
async def readyz(request: Request) -> JSONResponse:
    event_log = request.app.state.event_log
    checks = {"log_writable": bool(event_log is not None and event_log.healthy)}
    ready = all(checks.values())
    model = request.app.state.model
    # Reported, not required: an ingest-only deployment has no model, and a refused newer version leaves the
    # previous one serving.
    served = {"version": model.version.id if model.version else None, "error": model.error}
    store = {"reachable": True, "error": None}
    try:
        await asyncio.to_thread(request.app.state.store.ping)
    except StoreUnavailable as exc:
        store = {"reachable": False, "error": str(exc)}
    body = {"ready": ready, "checks": checks, "model": served, "online_store": store}
    return JSONResponse(body, status_code=200 if ready else 503)
