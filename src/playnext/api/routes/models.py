"""``GET /v1/models``: which model version this server answers with, and why a newer one was refused."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from playnext.api.auth import scope_dependency

router = APIRouter()


@router.get("/v1/models", summary="The served model version", dependencies=[Depends(scope_dependency("read"))])
async def served_model(request: Request) -> dict[str, Any]:
    served = request.app.state.model
    version = served.version
    summary = None
    if version is not None:
        m = version.manifest
        summary = {k: m.get(k) for k in ("id", "created", "code_version", "generators", "cutoff", "metrics")}
    return {"served": summary, "pointer": served.registry.current_id(), "error": served.error}
