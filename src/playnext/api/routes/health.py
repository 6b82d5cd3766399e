"""Liveness and readiness for orchestrators: alive means the process answers; ready means it can store events."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

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
    return JSONResponse({"ready": ready, "checks": checks, "model": served}, status_code=200 if ready else 503)
